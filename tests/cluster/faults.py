"""Cell functions the Ray tests put in place of `executors.run_task`. They run inside Ray workers,
so they live in an importable module and get their state (a folder) as an argument."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from pipeline.config import Params
from pipeline.evaluation.cell import Splits
from pipeline.evaluation.executors import Task, run_task

VICTIM: Task = ("cell", 3, 0)


def killed_once(folder: str, splits: Splits, params: Params, task: Task) -> dict:
    """Computes the task; on the victim's first try the worker then dies (SIGKILL) before it
    can return, as a worker lost to the OOM killer or a preempted machine would."""
    result = run_task(splits, params, task)
    marker = Path(folder) / "killed"
    if task == VICTIM and not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return result


def on_node(folder: str, splits: Splits, params: Params, task: Task) -> dict:
    """Computes the task and leaves a file named after the node that ran it."""
    import ray

    (Path(folder) / ray.get_runtime_context().get_node_id()).touch()
    return run_task(splits, params, task)


def stuck_on(folder: str, splits: Splits, params: Params, task: Task) -> dict:
    """Says it started (a file), then waits long enough for the test to take its node away."""
    (Path(folder) / f"started-{os.getpid()}").touch()
    time.sleep(120)
    return run_task(splits, params, task)
