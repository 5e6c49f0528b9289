"""The balanced scenario (the default): `size` labeled images of every class, the five arms of
`arms.ARMS` (+ cleaning's arms), chosen on val accuracy; gains over `real` and `real_classic`."""

from __future__ import annotations

import numpy as np

from pipeline.config import EvaluateConfig
from pipeline.data.imageset import ImageSet
from pipeline.data.splits import per_class_subset
from pipeline.evaluation import cleaning_summary, intervals
from pipeline.evaluation.arms import Arm, arms_for
from pipeline.evaluation.scenarios import Draw, Scenario
from pipeline.evaluation.scoring import accuracy


def arms(cfg: EvaluateConfig) -> tuple[Arm, ...]:
    return arms_for("balanced", cfg.clean, cfg.label_noise)


def draw(pool: ImageSet, size: int, seed: int, cfg: EvaluateConfig) -> Draw:
    return Draw(per_class_subset(pool.labels, size, seed, pool.class_names, "evaluate.train_sizes"))


def summarize_size(group: list[dict], arms: tuple[Arm, ...], full_acc: list[float]) -> dict:
    """One training size: every arm's accuracy, F1 and gains; cleaning's summary when it ran."""
    acc = {arm.name: [c["scores"][arm.name]["acc"] for c in group] for arm in arms}
    block = arm_block(group, arms, acc, full_acc)
    if "cleaning" in group[0]:
        block["cleaning"] = cleaning_summary.summarize_size([c["cleaning"] for c in group], acc)
    return block


def arm_block(group: list[dict], arms: tuple[Arm, ...], acc: dict[str, list[float]], full_acc: list[float]) -> dict:
    """Every arm's accuracy and F1 with intervals, gains over `real` (and the share of the gap to
    `full` closed) and over `real_classic`; `acc` is each arm's test accuracy per cell of `group`."""
    block: dict = {}
    for arm in arms:
        f1 = [c["scores"][arm.name]["f1"] for c in group]
        entry = {**intervals.interval_keys("acc", intervals.mean_ci(acc[arm.name])), **intervals.interval_keys("f1", intervals.mean_ci(f1))}
        if arm.gain_over_real:
            entry.update(intervals.gain_keys("gain", acc[arm.name], acc["real"]))
            entry["gap_closed"] = intervals.gap_closed(float(np.mean(acc[arm.name])), float(np.mean(acc["real"])), float(np.mean(full_acc)))
        if arm.gain_over_classic:
            entry.update(intervals.gain_keys("gain_vs_classic", acc[arm.name], acc["real_classic"]))
        entry["val_fits"] = int(max(c["selection"][arm.name]["val_fits"] for c in group))
        block[arm.name] = entry
    return block


def per_class_means(cells: list[dict], arms: tuple[Arm, ...]) -> dict:
    """{"n10": {"real": [mean accuracy of class 0, ...]}}: which classes an arm helps or hurts."""
    out: dict = {}
    for size in sorted({c["size"] for c in cells}):
        group = [c for c in cells if c["size"] == size]
        out[f"n{size}"] = {arm.name: np.nanmean([c["scores"][arm.name]["per_class"] for c in group], axis=0).tolist() for arm in arms}
    return out


def plot_tables(summary: dict, cells: list[dict], arms: tuple[Arm, ...]) -> dict[str, list[dict]]:
    """The rows of the CSV files `dvc plots` draws: the curve, the gains (of every arm the summary
    gives one), every per-seed score. The semi-supervised scenario's tables are made the same way."""
    sizes = sorted({c["size"] for c in cells})
    names = [arm.name for arm in arms]
    gaining = [name for name in names if "gain_mean" in summary[f"n{sizes[0]}"][name]]
    curve = [{"train_size": s, **{arm: summary[f"n{s}"][arm]["acc_mean"] for arm in names}, "full": summary["full"]["acc_mean"]} for s in sizes]
    gains = [{"train_size": s, **{arm: summary[f"n{s}"][arm]["gain_mean"] for arm in gaining}} for s in sizes]
    results = [
        {"train_size": c["size"], "seed": c["seed"], "arm": arm, "acc": c["scores"][arm]["acc"], "f1": c["scores"][arm]["f1"]}
        for c in cells
        for arm in names
    ]
    return {"learning_curve": curve, "gains": gains, "results": results}


SCENARIO = Scenario(
    name="balanced", arms=arms, draw=draw, metric=accuracy, headline="acc_mean", quality_arm="real_vae",
    summarize_size=summarize_size, per_class_means=per_class_means, plot_tables=plot_tables,
)
