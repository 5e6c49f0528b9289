"""Intervals over seeds: the mean of an arm, the paired gain of one arm over another.

Pure numpy/scipy returning plain floats, so results go straight into a JSON metrics file. A
quantity that is undefined for the input (an interval from one seed, or from seeds that do not
vary at all) is `float("nan")`, never a made-up number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

__all__ = ["Interval", "gain_keys", "gap_closed", "interval_keys", "mean_ci", "paired_gain"]

NAN = float("nan")
# Values this many float64 ulps (of their magnitude) apart are one value that rounding split.
_ROUNDING_ULPS = 16


@dataclass(frozen=True)
class Interval:
    """A mean over `n` seeds with its two-sided confidence bounds (nan when undefined)."""

    mean: float
    lo: float
    hi: float
    n: int


def _as_1d(values: ArrayLike, name: str) -> NDArray[np.float64]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: a mean over zero seeds is undefined")
    return arr


def mean_ci(values: ArrayLike, confidence: float = 0.95) -> Interval:
    """Student-t interval for the mean over seeds.

    Seeds are few (3-10), so the t distribution, not the normal one, gives honest width.
    Bounds are nan when the spread over seeds is unknown: one seed, or values that agree up to
    float rounding. A zero-width interval there would read as certainty (any nonzero constant
    gain "significant") when the seeds simply did not vary, e.g. the same cached samples each time.
    """
    arr = _as_1d(values, "values")
    return _t_interval(arr, confidence, scale=float(np.max(np.abs(arr))))


def _t_interval(arr: NDArray[np.float64], confidence: float, scale: float) -> Interval:
    """`scale`: the magnitude float rounding in `arr` is relative to (no spread below it)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    n = int(arr.size)
    mean = float(arr[0]) if np.all(arr == arr[0]) else float(arr.mean())  # copies of one value: exact
    if n < 2 or np.ptp(arr) <= _ROUNDING_ULPS * np.finfo(np.float64).eps * scale:
        return Interval(mean, NAN, NAN, n)
    sem = float(arr.std(ddof=1)) / math.sqrt(n)
    half = float(stats.t.ppf(0.5 + confidence / 2.0, df=n - 1)) * sem
    return Interval(mean, mean - half, mean + half, n)


def paired_gain(
    treatment: ArrayLike, control: ArrayLike, confidence: float = 0.95
) -> Interval:
    """Mean and t-interval of the per-seed difference treatment - control.

    Pairing by seed removes the seed-to-seed variance both arms share (same split, same
    initialisation), so the interval is far tighter than comparing two independent means.
    Inputs must list the same seeds in the same order. Differences that agree up to the rounding
    of the subtraction (relative to the arms' own values) count as no spread: nan bounds.
    """
    t = _as_1d(treatment, "treatment")
    c = _as_1d(control, "control")
    if t.shape != c.shape:
        raise ValueError(
            f"paired_gain needs one control per treatment seed, got {t.size} vs {c.size}"
        )
    return _t_interval(t - c, confidence, scale=float(max(np.max(np.abs(t)), np.max(np.abs(c)))))


def gap_closed(arm_mean: float, real_mean: float, full_mean: float) -> float:
    """Share of the real-only -> full-data gap an arm closes: (arm - real) / (full - real).

    0 means no better than real-only, 1 means as good as having all the real data; it can be
    negative or exceed 1. With no gap to close the share is undefined (nan).
    """
    gap = float(full_mean) - float(real_mean)
    if gap == 0.0 or not np.isfinite(gap):
        return NAN
    return (float(arm_mean) - float(real_mean)) / gap


def minimum_detectable_effect(differences: ArrayLike, power: float = 0.8, alpha: float = 0.05) -> float:
    """The smallest true mean difference a paired t-test over these seeds detects with `power`
    at two-sided level `alpha`, from the observed spread: (t_{1-a/2} + t_{power}) * sd / sqrt(n).

    It tells a "not significant" apart from "no effect": with it the report can say which gains
    the design could have seen. Undefined (nan) for fewer than two seeds or no spread.
    """
    d = _as_1d(differences, "differences")
    n = int(d.size)
    if n < 2 or np.ptp(d) <= _ROUNDING_ULPS * np.finfo(np.float64).eps * float(np.max(np.abs(d))):
        return NAN  # no spread (beyond float rounding): nothing to size a test with
    sd = float(d.std(ddof=1))
    df = n - 1
    return (float(stats.t.ppf(1 - alpha / 2, df)) + float(stats.t.ppf(power, df))) * sd / math.sqrt(n)


def interval_keys(prefix: str, interval: Interval) -> dict[str, float]:
    """`{prefix}_mean`, `{prefix}_lo`, `{prefix}_hi`: how an interval is spelt in the metrics files."""
    return {f"{prefix}_mean": interval.mean, f"{prefix}_lo": interval.lo, f"{prefix}_hi": interval.hi}


def gain_keys(prefix: str, treatment: ArrayLike, control: ArrayLike) -> dict[str, float]:
    """The paired gain of `treatment` over `control` under `prefix` and the smallest gain the design
    detects: `mde` for prefix `gain`, else `mde_<prefix without gain_>` (`gain_vs_best` ->
    `mde_vs_best`, `cost` -> `mde_cost`)."""
    mde_key = "mde" if prefix == "gain" else f"mde_{prefix.removeprefix('gain_')}"
    detectable = minimum_detectable_effect(np.subtract(treatment, control))
    return {**interval_keys(prefix, paired_gain(treatment, control)), mde_key: detectable}
