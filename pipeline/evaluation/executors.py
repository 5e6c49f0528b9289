"""Where the learning curve's cells run: worker processes of this machine, or tasks on a Ray cluster.

Both executors take the same task list and yield `(task index, result)` as cells finish, so
`learning_curve.run` keeps one loop (progress, results in task order) whatever runs the cells.
A cell seeds every fit from its own seed and sets torch's threads from `trainer.num_threads`
(`models.training.seed_all`), so its record depends on params only: byte-identical outputs under
`processes` and `ray`, with any number of workers or nodes.

Ray (`evaluate.executor: ray`, the optional extra `pip install -e '.[ray]'`): one task per cell,
`evaluate.cell_cpus` CPUs and `evaluate.cell_gpus` GPUs each; the splits go into the object
store once. A worker killed mid-cell is retried by Ray (`MAX_RETRIES`); a cell that still cannot
finish (a node lost for good) ends the run with one line naming the cells not done, before
anything is written; a user error inside a cell is re-raised as itself (one `error:` line).

Under either executor nothing the run started outlives it: a stage killed or stopped takes its
workers (and a local Ray instance) with it (`pipeline/lifecycle.py`).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed

from pipeline import kernels, lifecycle
from pipeline.config import EvaluateConfig, Params
from pipeline.errors import PipelineError
from pipeline.evaluation.cell import Splits, run_cell, run_full

Task = tuple[str, int, int]  # ("cell", size, seed) or ("full", 0, seed)
TaskFn = Callable[[Splits, Params, Task], dict]

MAX_RETRIES = 3  # Ray reruns a cell whose worker or node died this many times (system failures only)
POLL_S = 2.0  # how often the Ray loop checks that the cluster can still run a cell


def run_task(splits: Splits, params: Params, task: Task) -> dict:
    kind, size, seed = task
    return run_cell(splits, size, seed, params) if kind == "cell" else run_full(splits, seed, params)


def describe(task: Task) -> str:
    """The words the progress line and the errors use for a task."""
    kind, size, seed = task
    return f"n={size} seed={seed}" if kind == "cell" else f"whole pool, seed={seed}"


def longest_first(tasks: list[Task]) -> list[int]:
    """Task indices, largest cells first, so the last task to finish is a short one and no
    worker idles long."""
    return sorted(range(len(tasks)), key=lambda i: (tasks[i][0] != "cell", -tasks[i][1], i))


def results(tasks: list[Task], splits: Splits, params: Params, fn: TaskFn | None = None) -> Iterator[tuple[int, dict]]:
    """(task index, result) as tasks finish, on the executor `evaluate.executor` names; `fn`
    (default `run_task`, looked up now) computes one task."""
    fn = fn or run_task
    if params.evaluate.executor == "ray":
        return ray_results(tasks, splits, params, fn)
    return process_results(tasks, splits, params, fn)


def process_results(tasks: list[Task], splits: Splits, params: Params, fn: TaskFn) -> Iterator[tuple[int, dict]]:
    """In this process for one worker, else in `evaluate.workers` processes (spawned: forking a
    process whose torch thread pool runs can hang), each of which dies with this one
    (`lifecycle.die_with_parent`)."""
    if params.evaluate.workers == 1:
        for i, task in enumerate(tasks):
            yield i, fn(splits, params, task)
        return
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(params.evaluate.workers, mp_context=context, initializer=lifecycle.die_with_parent, initargs=(os.getpid(),))
    try:
        futures = {pool.submit(fn, splits, params, tasks[i]): i for i in longest_first(tasks)}
        for future in as_completed(futures):
            yield futures[future], future.result()
    except BaseException:  # an error, a stopped run, a caller that stopped early: no cell still running is wanted
        _kill_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    """End a pool's workers mid-cell; leaving the pool would wait for their cells to finish."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.kill()


def ray_results(tasks: list[Task], splits: Splits, params: Params, fn: TaskFn) -> Iterator[tuple[int, dict]]:
    """One Ray task per cell, collected with `ray.wait` as they finish."""
    ray = _import_ray()
    cfg = params.evaluate
    with ray_session(cfg):
        if cfg.ray_address is None:  # a cluster's autoscaler may still add the nodes a cell needs
            _check_fits(cfg)
        remote = ray.remote(_ray_task).options(**task_options(cfg))
        splits_ref, params_ref = ray.put(splits), ray.put(params)  # once, not once per task
        pending = {remote.remote(fn, splits_ref, params_ref, tasks[i]): i for i in longest_first(tasks)}
        nodes = _alive_nodes()
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
                if not ready:
                    _check_not_lost(cfg, nodes, [tasks[i] for i in pending.values()])
                    continue
                i = pending.pop(ready[0])
                yield i, _get(ready[0], [tasks[j] for j in [i, *pending.values()]])
        finally:
            for ref in pending:  # an error or an interrupted run: free the cluster for others
                ray.cancel(ref, force=True)


def task_options(cfg: EvaluateConfig) -> dict:
    """Resources and retries of one cell's task, and the environment its worker needs before
    torch loads (the CPU kernel dispatch, so every node computes what this one does)."""
    options: dict = {"num_cpus": cfg.cell_cpus, "num_gpus": cfg.cell_gpus, "max_retries": MAX_RETRIES, "retry_exceptions": False}
    env = kernels.inherited_env()
    if env:
        options["runtime_env"] = {"env_vars": env}
    return options


def _ray_task(fn: TaskFn, splits: Splits, params: Params, task: Task) -> dict:
    """A cell inside a Ray worker: Ray sets OMP_NUM_THREADS to the task's CPUs, so torch's own
    thread count is set here from params, as a process-pool worker gets it; the cell seeds
    every fit from its own seed (`seed_all` in fit_cvae and fit_classifier)."""
    import warnings

    import torch

    # The splits come from the object store as read-only arrays (shared, not copied); nothing
    # writes to them, and torch's warning about it on every worker is noise.
    warnings.filterwarnings("ignore", "The given NumPy array is not writable")
    if params.trainer.num_threads is not None:
        torch.set_num_threads(params.trainer.num_threads)
    return fn(splits, params, task)


@contextlib.contextmanager
def ray_session(cfg: EvaluateConfig) -> Iterator[None]:
    """Ray for one run: reuse a session this process already has (a notebook, the tests); else
    connect to `evaluate.ray_address`, or start a local instance and stop it after the run.

    On a cluster the run ships its own `pipeline` package to the workers (runtime_env
    py_modules): every node runs this checkout's code, not whatever version it has installed,
    so the results are the ones this machine would compute."""
    ray = _import_ray()
    if ray.is_initialized():
        yield
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # a pipeline run does not phone home
    # A local instance's processes die with this one, but its agents only a minute later: a guard kills them.
    with lifecycle.guard_descendants() if cfg.ray_address is None else contextlib.nullcontext():
        _connect(ray, cfg)
        lifecycle.reclaim_signals()  # ray.init replaced the stage's SIGTERM handler with its own
        try:
            yield
        finally:
            ray.shutdown()  # disconnects from a cluster; stops the local instance this run started


def _connect(ray, cfg: EvaluateConfig) -> None:
    try:
        if cfg.ray_address is None:
            ray.init(include_dashboard=False, logging_level=logging.WARNING)
        else:
            import pipeline

            ray.init(address=cfg.ray_address, runtime_env={"py_modules": [pipeline]}, logging_level=logging.WARNING)
    except (ConnectionError, ValueError, RuntimeError) as err:
        hint = "" if os.environ.get("RAY_AUTH_MODE") else "; a cluster with token authentication needs RAY_AUTH_MODE=token and its token, see docs/cluster.md"
        raise PipelineError(f"evaluate.ray_address: cannot connect to Ray at {cfg.ray_address!r} ({err}){hint}") from None


def _import_ray():
    try:
        import ray
    except ImportError:
        raise PipelineError("evaluate.executor: ray needs the optional extra (pip install -e '.[ray]')") from None
    return ray


def _get(ref, not_done: list[Task]) -> dict:
    """A finished task's result; a user error in it as itself; a cell Ray could not finish
    after its retries as one line naming every cell not done."""
    ray = _import_ray()
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as err:
        cause = err.cause
        if isinstance(cause, PipelineError):
            raise PipelineError(str(cause)) from None
        raise  # a bug: keep the worker's traceback
    except ray.exceptions.RayError as err:
        raise _lost(not_done, type(err).__name__) from None


def _lost(not_done: list[Task], why: str) -> PipelineError:
    cells = ", ".join(describe(task) for task in sorted(not_done))
    return PipelineError(f"evaluate: Ray could not finish {len(not_done)} cell(s) ({why}): {cells}; nothing was written, rerun to compute them")


def _alive_nodes() -> set[str]:
    ray = _import_ray()
    return {node["NodeID"] for node in ray.nodes() if node["Alive"]}


def _check_fits(cfg: EvaluateConfig) -> None:
    """A cell that asks for more than any node has would wait forever: say so instead."""
    ray = _import_ray()
    nodes = [node["Resources"] for node in ray.nodes() if node["Alive"]]
    if not any(res.get("CPU", 0) >= cfg.cell_cpus and res.get("GPU", 0) >= cfg.cell_gpus for res in nodes):
        need = f"{cfg.cell_cpus} CPU" + (f" and {cfg.cell_gpus} GPU" if cfg.cell_gpus else "")
        raise PipelineError(f"evaluate.cell_cpus/cell_gpus: a cell needs {need}, and no node of the Ray cluster has that much")


def _check_not_lost(cfg: EvaluateConfig, started_with: set[str], not_done: list[Task]) -> None:
    """A node that was there at the start has gone, and no node left can run a cell: Ray would
    wait for it forever, so the run ends here, naming the cells it did not finish."""
    if started_with <= _alive_nodes():
        return
    try:
        _check_fits(cfg)
    except PipelineError:
        raise _lost(not_done, "a node was lost and no node left can run a cell") from None
