"""Learning-curve cells under `processes` and `ray`, and what they project for a cluster.

Measured, back to back on the same reduced set of cells (`seeds` seeds x params' train sizes,
plus their whole-pool fits): the wall time of each executor with the same number of workers
(Ray's includes starting and stopping its local instance, as a run's does), every cell's own
wall and CPU seconds, Ray's per-task overhead with empty cells on warm workers, and the memory
of Ray's own processes. Projected from the CPU seconds per cell (what a cell takes on a core of
its own, which a busy machine hardly moves): the wall time of the default run and of a 200-cell
study on more CPUs or on quarter GPUs (`project`). Skipped, with the reason, without ray.
"""

from __future__ import annotations

import heapq
import os
import time
from collections.abc import Callable

from pipeline.config import Params
from pipeline.evaluation import executors
from pipeline.evaluation.cell import Splits
from pipeline.evaluation.executors import Task

EMPTY_TASKS = 40  # empty cells timed for the per-task overhead, after a warm-up round
PROJECTED_CPUS = (8, 32, 128)
PROJECTED_GPUS = (1, 4, 16)  # at cell_gpus 0.25: four cells share one
STUDY_CELLS = 200


def timed_task(splits: Splits, params: Params, task: Task) -> dict:
    """A cell's wall and CPU seconds (the bench keeps the seconds, not the record). CPU seconds
    are what the cell costs a core of its own: other work on the machine hardly moves them."""
    start, cpu = time.perf_counter(), time.process_time()
    executors.run_task(splits, params, task)
    return {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu}


def empty_task(splits: Splits, params: Params, task: Task) -> dict:
    """A cell that does nothing: what is left of its wall time is Ray's own cost."""
    return {}


def bench_cluster(splits: Splits, params: Params, seeds: int, say: Callable[[str], None] = print) -> dict:
    """Both executors on `seeds` seeds x params' sizes with `evaluate.workers` workers; the
    per-task overhead; the projections."""
    try:
        import ray
    except ImportError:
        return {"skipped": "ray is not installed (pip install -e '.[ray]')"}
    ev = params.evaluate.model_copy(update={"seeds": list(range(seeds))})
    tasks = [("cell", size, seed) for size in ev.train_sizes for seed in ev.seeds] + [("full", 0, seed) for seed in ev.seeds]
    workers = ev.workers
    say(f"cluster: {len(tasks)} cells under processes, {workers} workers")
    processes = _run(tasks, splits, params.model_copy(update={"evaluate": ev.model_copy(update={"executor": "processes"})}))
    say(f"cluster: the same cells under ray (a local instance of {workers} CPUs), then {EMPTY_TASKS} empty cells")
    on_ray = params.model_copy(update={"evaluate": ev.model_copy(update={"executor": "ray"})})
    start = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, logging_level="WARNING")  # what the executor starts
    started = time.perf_counter() - start
    try:
        ray_run = _run(tasks, splits, on_ray)
        memory = ray_memory_mib()
        overhead = task_overhead_s(splits, on_ray, workers)
    finally:
        stop = time.perf_counter()
        ray.shutdown()
        stopped = time.perf_counter() - stop
    ray_wall = started + ray_run["wall_s"] + stopped
    per_cell = _seconds_by_kind(tasks, ray_run["cpu_seconds"])
    return {
        "cells": len(tasks), "seeds": seeds, "train_sizes": ev.train_sizes, "workers": workers,
        "processes_wall_s": processes["wall_s"],
        "ray_wall_s": ray_wall,
        "ray_start_s": started, "ray_stop_s": stopped,
        "ray_vs_processes_ratio": ray_wall / processes["wall_s"],
        "ray_task_overhead_s": overhead,
        "seconds_per_cell": {"processes": _seconds_by_kind(tasks, processes["seconds"]), "ray": _seconds_by_kind(tasks, ray_run["seconds"])},
        "cpu_seconds_per_cell": {"processes": _seconds_by_kind(tasks, processes["cpu_seconds"]), "ray": per_cell},
        "load_average_1m": os.getloadavg()[0],  # well above 0: other work slowed both executors' wall times
        "ray_memory_mib": memory,
        "projection": projections(per_cell, params, overhead, started + stopped),
    }


def _run(tasks: list[Task], splits: Splits, params: Params) -> dict:
    seconds: list[float] = [0.0] * len(tasks)
    cpu: list[float] = [0.0] * len(tasks)
    start = time.perf_counter()
    for i, result in executors.results(tasks, splits, params, timed_task):
        seconds[i], cpu[i] = result["seconds"], result["cpu_seconds"]
    return {"wall_s": time.perf_counter() - start, "seconds": seconds, "cpu_seconds": cpu}


def _seconds_by_kind(tasks: list[Task], seconds: list[float]) -> dict[str, float]:
    """Mean seconds of one cell: `n5`, `n10`... and `full` (a whole-pool fit)."""
    groups: dict[str, list[float]] = {}
    for (kind, size, _), s in zip(tasks, seconds):
        groups.setdefault(f"n{size}" if kind == "cell" else "full", []).append(s)
    return {key: sum(values) / len(values) for key, values in groups.items()}


def task_overhead_s(splits: Splits, params: Params, workers: int) -> float:
    """Seconds of a worker slot one task costs beyond its own work: empty cells through the
    executor (object store, scheduling, `ray.wait`), on workers already started."""
    tasks = [("cell", 1, seed) for seed in range(EMPTY_TASKS)]
    list(executors.results(tasks[:workers], splits, params, empty_task))  # workers up and importing
    start = time.perf_counter()
    list(executors.results(tasks, splits, params, empty_task))
    return (time.perf_counter() - start) * workers / len(tasks)


def ray_memory_mib() -> dict[str, float]:
    """Resident memory of this machine's Ray processes now: its own (GCS, raylet, agents...)
    and its workers (each holding torch and a cell)."""
    import psutil

    own = workers = 0.0
    for proc in psutil.Process().children(recursive=True):
        try:
            rss, name = proc.memory_info().rss / 2**20, " ".join(proc.cmdline()[:2])
        except psutil.Error:
            continue
        if "default_worker.py" in name or proc.name().startswith("ray::"):
            workers += rss
        else:
            own += rss
    return {"ray_own": own, "workers": workers}


def project(cells: list[float], slots: int, fixed_s: float, overhead_s: float) -> float:
    """Wall seconds of `cells` (each cell's seconds) on `slots` concurrent cells: largest first,
    each to the slot free soonest, as the executor submits them; plus start and stop."""
    free = [0.0] * slots
    for seconds in sorted(cells, reverse=True):
        heapq.heappush(free, heapq.heappop(free) + seconds + overhead_s)
    return fixed_s + max(free)


def projections(per_cell: dict[str, float], params: Params, overhead_s: float, fixed_s: float) -> dict:
    """The default run (params' sizes x seeds, plus whole-pool fits) and a study of 200 cells of
    the largest size, on more CPUs (cell_cpus 1) and on GPUs at cell_gpus 0.25 (assumed: a
    cell on a quarter GPU takes its CPU seconds, as these small models are launch-bound)."""
    ev = params.evaluate
    largest = f"n{max(ev.train_sizes)}"
    default = [per_cell.get(f"n{size}", per_cell[largest]) for size in ev.train_sizes for _ in ev.seeds] + [per_cell["full"]] * len(ev.seeds)
    study = [per_cell[largest]] * STUDY_CELLS
    runs = {"default_run": default, f"study_{STUDY_CELLS}_cells": study}
    out: dict = {}
    for name, cells in runs.items():
        out[name] = {
            "cells": len(cells),
            **{f"cpus_{n}_s": project(cells, n, fixed_s, overhead_s) for n in PROJECTED_CPUS},
            **{f"gpus_{n}_s": project(cells, 4 * n, fixed_s, overhead_s) for n in PROJECTED_GPUS},
        }
    return out
