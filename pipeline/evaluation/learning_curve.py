"""The learning curve: every (training size, seed) cell, the whole-pool upper bound, and their
summary with confidence intervals over seeds.

`summarize` gives nested metrics whose flattened keys (`n10.real_vae.gain_mean`) are what
`dvc metrics diff` and the report read.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed

import numpy as np
from rich.progress import Progress, TimeElapsedColumn

from pipeline.config import Params
from pipeline.evaluation import intervals, scenarios
from pipeline.evaluation.arms import ARMS, Arm
from pipeline.evaluation.cell import Splits, run_cell, run_full

QUALITY_KEYS = (
    "label_fidelity", "fd", "precision", "recall", "density", "coverage", "diversity_ratio", "memorisation_ratio", "near_copy_rate",
)


def run(splits: Splits, params: Params, show_progress: bool = True) -> tuple[list[dict], list[dict]]:
    """(one record per cell, one score per seed of the whole-pool arm).

    Cells are independent (each seeds its own fits), so they run in `evaluate.workers` processes
    and come back in order: the results depend on params, never on the number of workers."""
    cfg = params.evaluate
    tasks = [("cell", size, seed) for size in cfg.train_sizes for seed in cfg.seeds] + [("full", 0, seed) for seed in cfg.seeds]
    results: list[dict | None] = [None] * len(tasks)
    with CellProgress(len(tasks), show_progress) as progress:
        for i, result in _results(tasks, splits, params):
            results[i] = result
            kind, size, seed = tasks[i]
            progress.done(f"n={size} seed={seed}" if kind == "cell" else f"whole pool, seed={seed}")
    cells = [r for r, task in zip(results, tasks) if task[0] == "cell"]
    full = [r for r, task in zip(results, tasks) if task[0] == "full"]
    return cells, full


def _results(tasks: list[tuple[str, int, int]], splits: Splits, params: Params) -> Iterator[tuple[int, dict]]:
    """(task index, result) as tasks finish: in this process for one worker, else in worker
    processes (spawned: forking a process whose torch thread pool runs can hang)."""
    if params.evaluate.workers == 1:
        for i, task in enumerate(tasks):
            yield i, _run_task(splits, params, task)
        return
    context = multiprocessing.get_context("spawn")
    # Largest cells first, so the last task to finish is a short one and no worker idles long.
    longest_first = sorted(range(len(tasks)), key=lambda i: (tasks[i][0] != "cell", -tasks[i][1], i))
    with ProcessPoolExecutor(params.evaluate.workers, mp_context=context) as pool:
        futures = {pool.submit(_run_task, splits, params, tasks[i]): i for i in longest_first}
        for future in as_completed(futures):
            yield futures[future], future.result()


def _run_task(splits: Splits, params: Params, task: tuple[str, int, int]) -> dict:
    kind, size, seed = task
    return run_cell(splits, size, seed, params) if kind == "cell" else run_full(splits, seed, params)


class CellProgress:
    """Cells done and time left: a live bar on a terminal, one line per cell elsewhere (DVC's log,
    CI), so a long run never looks stuck."""

    def __init__(self, total: int, show: bool) -> None:
        self.total, self.show, self.count = total, show, 0
        self.live = show and sys.stderr.isatty()
        self.start = time.monotonic()
        self.bar = Progress(*Progress.get_default_columns(), TimeElapsedColumn(), disable=not self.live)

    def __enter__(self) -> CellProgress:
        self.bar.__enter__()
        self.task = self.bar.add_task("evaluate", total=self.total)
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def done(self, what: str) -> None:
        self.count += 1
        self.bar.update(self.task, advance=1, description=f"evaluate {what}")
        if self.show and not self.live:
            elapsed = time.monotonic() - self.start
            left = elapsed / self.count * (self.total - self.count)
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
    return out


def per_class_means(cells: list[dict], arms: tuple[Arm, ...] = ARMS) -> dict:
    """Per-class test accuracy (recall) averaged over seeds, as the cells' scenario reports it."""
    return scenarios.of_cells(cells).per_class_means(cells, arms)


def plot_tables(summary: dict, cells: list[dict], arms: tuple[Arm, ...] = ARMS) -> dict[str, list[dict]]:
    """The rows of the CSV files `dvc plots` draws, as the cells' scenario lays them out."""
    return scenarios.of_cells(cells).plot_tables(summary, cells, arms)
