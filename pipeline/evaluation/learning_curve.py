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
from pipeline.evaluation import intervals, quality_gain, scenarios
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
    each training size summarised by the cells' scenario (`scenarios/`), with `arms` the run's."""
    full_acc = [f["acc"] for f in full]
    out: dict = {"full": {**intervals.interval_keys("acc", intervals.mean_ci(full_acc)), **intervals.interval_keys("f1", intervals.mean_ci([f["f1"] for f in full]))}}
    scenario = scenarios.of_cells(cells)
    for size in sizes:
        group = sorted((c for c in cells if c["size"] == size), key=lambda c: c["seed"])
        block = scenario.summarize_size(group, arms, full_acc)
        block["quality"] = {key: intervals.mean_ci([c["quality"][key] for c in group]).mean for key in QUALITY_KEYS}
        out[f"n{size}"] = block
    if any("quality_tries" in c for c in cells):
        out["quality_vs_gain"] = quality_gain.summarize(cells)
    return out


def per_class_means(cells: list[dict], arms: tuple[Arm, ...] = ARMS) -> dict:
    """Per-class test accuracy (recall) averaged over seeds, as the cells' scenario reports it."""
    return scenarios.of_cells(cells).per_class_means(cells, arms)


def plot_tables(summary: dict, cells: list[dict], arms: tuple[Arm, ...] = ARMS) -> dict[str, list[dict]]:
    """The rows of the CSV files `dvc plots` draws, as the cells' scenario lays them out."""
    return scenarios.of_cells(cells).plot_tables(summary, cells, arms)
