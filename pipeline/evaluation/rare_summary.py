"""The imbalanced scenario's summary over seeds: balanced accuracy, macro-F1 and rare-class recall
per arm, with paired gains over plain training and over the best non-generative fix.

"The best non-generative fix" and "the best VAE arm" are chosen per seed on `val` (the cell's
`best_by_val`), never by their test means: choosing the baseline by test would pick whichever arm
was luckiest on test and bias the comparison. Flattened keys: `n5.vae_rare.bal_acc_mean`,
`n5.vae_rare.gain_mean` (balanced accuracy over `plain`), `n5.vae_rare.gain_vs_best_mean`,
`n5.best_generative.gain_vs_best_lo`, `n5.vae_rare.mde`, ...
"""

from __future__ import annotations

import numpy as np

from pipeline.evaluation import intervals
from pipeline.evaluation.arms import IMBALANCED_ARMS

METRICS = ("bal_acc", "acc", "f1", "rare_recall")
BASELINE = "plain"
BEST = {"best_non_generative": "non_generative", "best_generative": "generative"}


def is_imbalanced(cells: list[dict]) -> bool:
    return bool(cells) and "rare_classes" in cells[0]


def _means(values: dict[str, list[float]]) -> dict:
    out: dict = {}
    for metric in METRICS:
        out.update(intervals.interval_keys(metric, intervals.mean_ci(values[metric])))
    return out


def _series(group: list[dict], arms: list[str], metric: str) -> list[float]:
    """The score of arms[i] in cell i: one arm throughout, or each seed's pick."""
    return [c["scores"][arm][metric] for c, arm in zip(group, arms)]


def summarize_size(group: list[dict]) -> dict:
    """One training size: every arm, then the per-seed best of each kind chosen on val."""
    picks = {kind: [c["best_by_val"][kind] for c in group] for kind in BEST.values()}
    plain = _series(group, [BASELINE] * len(group), "bal_acc")
    best_fix = _series(group, picks["non_generative"], "bal_acc")
    block: dict = {}
    for arm in IMBALANCED_ARMS:
        names = [arm.name] * len(group)
        entry = _means({m: _series(group, names, m) for m in METRICS})
        own = _series(group, names, "bal_acc")
        if arm.name != BASELINE:
            entry.update(intervals.gain_keys("gain", own, plain))
        if arm.generative:
            entry.update(intervals.gain_keys("gain_vs_best", own, best_fix))
        entry["val_fits"] = int(max(c["selection"][arm.name]["val_fits"] for c in group))
        block[arm.name] = entry
    for key, kind in BEST.items():
        chosen = _series(group, picks[kind], "bal_acc")
        entry = {**_means({m: _series(group, picks[kind], m) for m in METRICS}), **intervals.gain_keys("gain", chosen, plain)}
        if kind == "generative":
            entry.update(intervals.gain_keys("gain_vs_best", chosen, best_fix))
        block[key] = entry
    return block


def per_class_means(cells: list[dict]) -> dict:
    """{"n5": {"rare": {arm: [mean recall of class k over the seeds it was rare]}, "common": ...,
    "rare_seeds": [seeds class k was rare]}}: the rare classes change with the seed, so a class's
    recall is reported apart for the seeds it was rare and those it was common (nan: never)."""
    out: dict = {}
    for size in sorted({c["size"] for c in cells}):
        group = [c for c in cells if c["size"] == size]
        classes = len(group[0]["scores"][BASELINE]["per_class"])
        rare = np.array([[k in c["rare_classes"] for k in range(classes)] for c in group])
        block: dict = {"seeds": len(group), "rare_seeds": rare.sum(0).tolist()}
        for status, mask in (("rare", rare), ("common", ~rare)):
            block[status] = {}
            for arm in IMBALANCED_ARMS:
                recall = np.array([c["scores"][arm.name]["per_class"] for c in group], dtype=np.float64)
                kept = np.where(mask, recall, np.nan)
                block[status][arm.name] = [_nanmean(kept[:, k]) for k in range(classes)]
        out[f"n{size}"] = block
    return out


def _nanmean(values: np.ndarray) -> float:
    """The mean of the numbers; nan (not a warning) when there are none."""
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if len(finite) else float("nan")


def plot_tables(summary: dict, cells: list[dict]) -> dict[str, list[dict]]:
    """The CSV rows `dvc plots` draws: balanced accuracy per arm and size, gains, per-seed scores."""
    names = [arm.name for arm in IMBALANCED_ARMS]
    sizes = sorted({c["size"] for c in cells})
    curve = [{"train_size": s, **{arm: summary[f"n{s}"][arm]["bal_acc_mean"] for arm in names}} for s in sizes]
    gains = [{"train_size": s, **{arm: summary[f"n{s}"][arm]["gain_mean"] for arm in names[1:]}} for s in sizes]
    results = [
        {"train_size": c["size"], "seed": c["seed"], "arm": arm, **{m: c["scores"][arm][m] for m in METRICS}}
        for c in cells
        for arm in names
    ]
    return {"learning_curve": curve, "gains": gains, "results": results}
