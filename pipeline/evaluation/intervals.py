"""Intervals over seeds: the mean of an arm, the paired gain of one arm over another.

Pure numpy/scipy returning plain floats, so results go straight into a JSON metrics file. A
quantity that is undefined for the input (an interval from one seed) is `float("nan")`, never a
made-up number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

__all__ = ["Interval", "gap_closed", "mean_ci", "paired_gain"]

NAN = float("nan")


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
    One seed says nothing about spread: its bounds are nan. Constant values give lo == hi ==
    mean exactly (checked explicitly, so float rounding in `std` cannot open a fake gap).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    arr = _as_1d(values, "values")
    n = int(arr.size)
    if np.all(arr == arr[0]):
        mean = float(arr[0])
        return Interval(mean, mean if n > 1 else NAN, mean if n > 1 else NAN, n)
    mean = float(arr.mean())
    if n == 1:
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
    Inputs must list the same seeds in the same order.
    """
    t = _as_1d(treatment, "treatment")
    c = _as_1d(control, "control")
    if t.shape != c.shape:
        raise ValueError(
            f"paired_gain needs one control per treatment seed, got {t.size} vs {c.size}"
        )
    return mean_ci(t - c, confidence)


def gap_closed(arm_mean: float, real_mean: float, full_mean: float) -> float:
    """Share of the real-only -> full-data gap an arm closes: (arm - real) / (full - real).

    0 means no better than real-only, 1 means as good as having all the real data; it can be
    negative or exceed 1. With no gap to close the share is undefined (nan).
    """
    gap = float(full_mean) - float(real_mean)
    if gap == 0.0 or not np.isfinite(gap):
        return NAN
    return (float(arm_mean) - float(real_mean)) / gap
