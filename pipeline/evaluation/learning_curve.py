"""The learning curve: every (training size, seed) cell, the whole-pool upper bound, and their
summary with confidence intervals over seeds.

`summarize` gives nested metrics whose flattened keys (`n10.real_vae.gain_mean`) are what
`dvc metrics diff` and the report read.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from rich.progress import Progress, TimeElapsedColumn

from pipeline.config import Params
from pipeline.evaluation import cleaning_summary, intervals, quality_gain, rare_summary
from pipeline.evaluation.arms import ARMS, Arm
from pipeline.evaluation.cell import Splits
from pipeline.evaluation.cell_cache import CellCache
from pipeline.evaluation.executors import describe, results as run_tasks
from pipeline.evaluation.quality import QUALITY_KEYS


def run(splits: Splits, params: Params, show_progress: bool = True, cache: CellCache | None = None) -> tuple[list[dict], list[dict]]:
    """(one record per cell, one score per seed of the whole-pool arm).

    Cells are independent (each seeds its own fits), so they run wherever `evaluate.executor`
    says (`executors.py`: worker processes or Ray tasks) and come back in order: the results
    depend on params, never on the executor or the number of workers or nodes. With a `cache`,
    cells an interrupted run finished are taken from it and each new one is stored."""
    cfg = params.evaluate
    tasks = [("cell", size, seed) for size in cfg.train_sizes for seed in cfg.seeds] + [("full", 0, seed) for seed in cfg.seeds]
    results: list[dict | None] = [cache.get(task) if cache else None for task in tasks]
    todo = [i for i, result in enumerate(results) if result is None]
    with CellProgress(len(tasks), show_progress, reused=len(tasks) - len(todo)) as progress:
        for j, result in run_tasks([tasks[i] for i in todo], splits, params):
            i = todo[j]
            results[i] = result
            if cache:
                cache.put(tasks[i], result)
            progress.done(describe(tasks[i]))
    cells = [r for r, task in zip(results, tasks) if task[0] == "cell"]
    full = [r for r, task in zip(results, tasks) if task[0] == "full"]
    return cells, full


class CellProgress:
    """Cells done and time left: a live bar on a terminal, one line per cell elsewhere (DVC's log,
    CI), so a long run never looks stuck."""

    def __init__(self, total: int, show: bool, reused: int = 0) -> None:
        self.total, self.show, self.count, self.reused = total, show, reused, reused
        self.live = show and sys.stderr.isatty()
        self.start = time.monotonic()
        self.bar = Progress(*Progress.get_default_columns(), TimeElapsedColumn(), disable=not self.live)

    def __enter__(self) -> CellProgress:
        self.bar.__enter__()
        self.task = self.bar.add_task("evaluate", total=self.total, completed=self.reused)
        if self.show and self.reused:
            print(f"evaluate: {self.reused}/{self.total} cells kept from an interrupted run", file=sys.stderr, flush=True)
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def done(self, what: str) -> None:
        self.count += 1
        self.bar.update(self.task, advance=1, description=f"evaluate {what}")
        if self.show and not self.live:
            elapsed = time.monotonic() - self.start
            left = elapsed / (self.count - self.reused) * (self.total - self.count)
            print(f"evaluate: {self.count}/{self.total} cells ({what}), {elapsed:.0f} s elapsed, ~{left:.0f} s left", file=sys.stderr, flush=True)


def summarize(cells: list[dict], full: list[dict], sizes: list[int], arms: tuple[Arm, ...] = ARMS) -> dict:
    """Nested metrics: {"n10": {"real_vae": {"acc_mean": ..., "gain_mean": ...}}, "full": ...};
    `arms`: the balanced scenario's arms of the run (`arms.arms_for`); the imbalanced scenario has
    its own arms and metrics (`rare_summary`)."""
    full_acc = [f["acc"] for f in full]
    out: dict = {"full": {**intervals.interval_keys("acc", intervals.mean_ci(full_acc)), **intervals.interval_keys("f1", intervals.mean_ci([f["f1"] for f in full]))}}
    imbalanced = rare_summary.is_imbalanced(cells)
    for size in sizes:
        group = sorted((c for c in cells if c["size"] == size), key=lambda c: c["seed"])
        if imbalanced:
            block = rare_summary.summarize_size(group)
        else:
            acc = {arm.name: [c["scores"][arm.name]["acc"] for c in group] for arm in arms}
            block = _arm_block(group, arms, acc, full_acc)
            if "cleaning" in group[0]:
                block["cleaning"] = cleaning_summary.summarize_size([c["cleaning"] for c in group], acc)
        block["quality"] = {key: intervals.mean_ci([c["quality"][key] for c in group]).mean for key in QUALITY_KEYS}
        out[f"n{size}"] = block
    if any("quality_tries" in c for c in cells):
        out["quality_vs_gain"] = quality_gain.summarize(cells)
    return out


def _arm_block(group: list[dict], arms: tuple[Arm, ...], acc: dict[str, list[float]], full_acc: list[float]) -> dict:
    """One training size of the balanced scenario: every arm's accuracy, F1 and gains; `acc` is
    each arm's test accuracy per cell of `group`."""
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


def per_class_means(cells: list[dict], arms: tuple[Arm, ...] = ARMS) -> dict:
    """{"n10": {"real": [mean accuracy of class 0, ...]}}: which classes an arm helps or hurts."""
    if rare_summary.is_imbalanced(cells):
        return rare_summary.per_class_means(cells)
    out: dict = {}
    for size in sorted({c["size"] for c in cells}):
        group = [c for c in cells if c["size"] == size]
        out[f"n{size}"] = {arm.name: np.nanmean([c["scores"][arm.name]["per_class"] for c in group], axis=0).tolist() for arm in arms}
    return out


def plot_tables(summary: dict, cells: list[dict], arms: tuple[Arm, ...] = ARMS) -> dict[str, list[dict]]:
    """The rows of the CSV files `dvc plots` draws: the curve, the gains, every per-seed score."""
    if rare_summary.is_imbalanced(cells):
        return rare_summary.plot_tables(summary, cells)
    sizes = sorted({c["size"] for c in cells})
    names = [arm.name for arm in arms]
    gaining = [arm.name for arm in arms if arm.gain_over_real]
    curve = [{"train_size": s, **{arm: summary[f"n{s}"][arm]["acc_mean"] for arm in names}, "full": summary["full"]["acc_mean"]} for s in sizes]
    gains = [{"train_size": s, **{arm: summary[f"n{s}"][arm]["gain_mean"] for arm in gaining}} for s in sizes]
    results = [
        {"train_size": c["size"], "seed": c["seed"], "arm": arm, "acc": c["scores"][arm]["acc"], "f1": c["scores"][arm]["f1"]}
        for c in cells
        for arm in names
    ]
    return {"learning_curve": curve, "gains": gains, "results": results}
