"""Which sample-quality metric predicts whether samples help the classifier?

Every cell already tries several sampling settings per VAE arm and scores each on val. Here the
samples of each scored try (its sampling knobs only, drawn at the fixed amount the quality table
uses) are measured with every quality metric, and the try's val gain over the arm it extends (that
arm's chosen val score) is put next to them. Per cell, per metric, the Spearman rank correlation
of metric and gain over the cell's tries; over cells, its mean with a percentile bootstrap
interval (cells resampled). Only `val` enters: the gains are the selection's own val scores.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from scipy import stats

from pipeline.evaluation.arms import BY_NAME, RARE_SAMPLING, SAMPLING
from pipeline.evaluation.quality import SAMPLE_KEYS, sample_quality

if TYPE_CHECKING:
    from pipeline.data.imageset import ImageSet
    from pipeline.evaluation.selection import SampleCache
    from pipeline.models.classify import Classifier

NAN = float("nan")
RESAMPLES = 2000  # bootstrap resamples of the cells
MIN_TRIES = 3  # a rank correlation over fewer tries says nothing


def score_tries(
    selections: dict[str, dict], samples: SampleCache, real: ImageSet, reference: ImageSet, assessor: Classifier, seed: int
) -> list[dict]:
    """`tries_points` with the cell's measure: `quality.sample_quality` against `reference` (no
    per-class breakdown) of each setting's samples, drawn as many per class as `reference` has of
    its largest class, whatever the setting's `ratio`: `sample_quality` measures no more, and the
    amount (a knob of its own) does not move the metrics that depend on it (recall, coverage)."""
    per_class = samples.resized(int(np.bincount(reference.labels).max()))

    def measure(setting: dict) -> dict:
        return sample_quality(per_class(setting), real, reference, assessor, seed, per_class=False)

    return tries_points(selections, measure, {"ratio": None})


def tries_points(selections: dict[str, dict], measure: Callable[[dict], dict], fixed_amount: dict | None = None) -> list[dict]:
    """One point per scored try of every VAE arm: `{"arm", "try", "gain", "quality"}`.

    `selections`: the cell's `Selection.to_json()` per arm; `measure(setting)`: the quality of the
    samples of a sampling setting, called once per distinct one (the chosen setting's samples are
    drawn anyway; the others come from the sample cache or are drawn at `fixed_amount`)."""
    points: list[dict] = []
    measured: dict[tuple, dict] = {}
    for name, selection in selections.items():
        arm = BY_NAME.get(name)
        if arm is None or arm.extends is None or arm.extends not in selections:
            continue
        baseline = selections[arm.extends]["val_acc"]
        for i, entry in enumerate(selection["trace"]):
            if entry["val_acc"] is None:  # stopped by successive halving, or no samples left
                continue
            setting = {k: v for k, v in entry["setting"].items() if k in (*SAMPLING, *RARE_SAMPLING)}
            setting.update(fixed_amount or {})
            key = tuple(sorted(setting.items(), key=lambda kv: kv[0]))
            if key not in measured:
                measured[key] = measure(setting)
            quality = {k: measured[key][k] for k in SAMPLE_KEYS}
            points.append({"arm": name, "try": i, "gain": entry["val_acc"] - baseline, "quality": quality})
    return points


def cell_spearman(points: list[dict], metric: str) -> float:
    """Spearman's rho of `metric` and the val gain over one cell's tries; nan when undefined
    (fewer than `MIN_TRIES` tries with a value, or a metric or gain that does not vary)."""
    pairs = np.array([(_num(p["quality"].get(metric)), p["gain"]) for p in points], dtype=float).reshape(-1, 2)
    pairs = pairs[np.isfinite(pairs).all(axis=1)]
    if len(pairs) < MIN_TRIES or np.ptp(pairs[:, 0]) == 0 or np.ptp(pairs[:, 1]) == 0:
        return NAN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(stats.spearmanr(pairs[:, 0], pairs[:, 1]).statistic)


def summarize(cells: list[dict], metrics: tuple[str, ...] = SAMPLE_KEYS, seed: int = 0) -> dict:
    """{metric: {"spearman_mean", "spearman_lo", "spearman_hi", "cells"}}: the mean over cells of
    the per-cell rho (cells where it is undefined left out), and a 95% percentile bootstrap
    interval over cells (nan from fewer than 2 cells); {} without tries."""
    tried = [c["quality_tries"] for c in cells if c.get("quality_tries")]
    if not tried:
        return {}
    rng = np.random.default_rng(seed)
    out = {}
    for metric in metrics:
        rho = np.array([cell_spearman(points, metric) for points in tried])
        rho = rho[np.isfinite(rho)]
        entry = {"spearman_mean": float(rho.mean()) if len(rho) else NAN, "spearman_lo": NAN, "spearman_hi": NAN, "cells": int(len(rho))}
        if len(rho) >= 2:  # cells that all agree give the bootstrap nothing to vary: [mean, mean]
            means = rng.choice(rho, size=(RESAMPLES, len(rho)), replace=True).mean(axis=1) if np.ptp(rho) > 0 else rho[:1]
            entry["spearman_lo"], entry["spearman_hi"] = (float(q) for q in np.quantile(means, [0.025, 0.975]))
        out[metric] = entry
    return out


def pooled_points(cells: list[dict]) -> list[dict]:
    """Every try of every cell, with its cell's size and seed: the scatter's points."""
    return [{**p, "size": c["size"], "seed": c["seed"]} for c in cells for p in c.get("quality_tries", [])]


def _num(value: object) -> float:
    """A metric as read back from JSON (nan is written as null)."""
    return NAN if value is None else float(value)
