"""The learning curve: every (training size, seed) cell, the whole-pool upper bound, and their
summary with confidence intervals over seeds.

`summarize` gives nested metrics whose flattened keys (`n10.real_vae.gain_mean`) are what
`dvc metrics diff` and the report read.
"""

from __future__ import annotations

import numpy as np
from rich.progress import Progress

from pipeline.config import Params
from pipeline.evaluation import intervals
from pipeline.evaluation.arms import ARMS, GAIN_ARMS, NAMES
from pipeline.evaluation.cell import Splits, run_cell, run_full

QUALITY_KEYS = ("label_fidelity", "fd", "precision", "recall", "density", "coverage", "memorisation_ratio", "near_copy_rate")


def run(splits: Splits, params: Params, show_progress: bool = True) -> tuple[list[dict], list[dict]]:
    """(one record per cell, one score per seed of the whole-pool arm)."""
    cfg = params.evaluate
    cells, full = [], []
    total = len(cfg.train_sizes) * len(cfg.seeds) + len(cfg.seeds)
    with Progress(disable=not show_progress) as progress:
        task = progress.add_task("evaluate", total=total)
        for size in cfg.train_sizes:
            for seed in cfg.seeds:
                progress.update(task, description=f"evaluate n={size} seed={seed}")
                cells.append(run_cell(splits, size, seed, params))
                progress.advance(task)
        for seed in cfg.seeds:
            progress.update(task, description=f"evaluate full seed={seed}")
            full.append(run_full(splits, seed, params))
            progress.advance(task)
    return cells, full


def _interval(prefix: str, interval: intervals.Interval) -> dict:
    return {f"{prefix}_mean": interval.mean, f"{prefix}_lo": interval.lo, f"{prefix}_hi": interval.hi}


def summarize(cells: list[dict], full: list[dict], sizes: list[int]) -> dict:
    """Nested metrics: {"n10": {"real_vae": {"acc_mean": ..., "gain_mean": ...}}, "full": ...}."""
    full_acc = [f["acc"] for f in full]
    out: dict = {"full": {**_interval("acc", intervals.mean_ci(full_acc)), **_interval("f1", intervals.mean_ci([f["f1"] for f in full]))}}
    for size in sizes:
        group = sorted((c for c in cells if c["size"] == size), key=lambda c: c["seed"])
        acc = {arm: [c["scores"][arm]["acc"] for c in group] for arm in NAMES}
        block: dict = {}
        for arm in ARMS:
            f1 = [c["scores"][arm.name]["f1"] for c in group]
            entry = {**_interval("acc", intervals.mean_ci(acc[arm.name])), **_interval("f1", intervals.mean_ci(f1))}
            if arm.gain_over_real:
                entry.update(_interval("gain", intervals.paired_gain(acc[arm.name], acc["real"])))
                entry["gap_closed"] = intervals.gap_closed(float(np.mean(acc[arm.name])), float(np.mean(acc["real"])), float(np.mean(full_acc)))
            if arm.gain_over_classic:
                entry.update(_interval("gain_vs_classic", intervals.paired_gain(acc[arm.name], acc["real_classic"])))
            block[arm.name] = entry
        block["quality"] = {key: intervals.mean_ci([c["quality"][key] for c in group]).mean for key in QUALITY_KEYS}
        out[f"n{size}"] = block
    return out


def per_class_means(cells: list[dict]) -> dict:
    """{"n10": {"real": [mean accuracy of class 0, ...]}}: which classes an arm helps or hurts."""
    out: dict = {}
    for size in sorted({c["size"] for c in cells}):
        group = [c for c in cells if c["size"] == size]
        out[f"n{size}"] = {arm: np.nanmean([c["scores"][arm]["per_class"] for c in group], axis=0).tolist() for arm in NAMES}
    return out


def plot_tables(summary: dict, cells: list[dict]) -> dict[str, list[dict]]:
    """The rows of the CSV files `dvc plots` draws: the curve, the gains, every per-seed score."""
    sizes = sorted({c["size"] for c in cells})
    curve = [{"train_size": s, **{arm: summary[f"n{s}"][arm]["acc_mean"] for arm in NAMES}, "full": summary["full"]["acc_mean"]} for s in sizes]
    gains = [{"train_size": s, **{arm: summary[f"n{s}"][arm]["gain_mean"] for arm in GAIN_ARMS}} for s in sizes]
    results = [
        {"train_size": c["size"], "seed": c["seed"], "arm": arm, "acc": c["scores"][arm]["acc"], "f1": c["scores"][arm]["f1"]}
        for c in cells
        for arm in NAMES
    ]
    return {"learning_curve": curve, "gains": gains, "results": results}
