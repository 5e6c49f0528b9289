"""The executors' plumbing without a cluster: task order, the missing extra, params, projections.
(Real Ray runs are in tests/cluster/.)"""

from __future__ import annotations

import sys

import pytest

from pipeline.bench import cluster as bench_cluster
from pipeline.config import Params, parse_params
from pipeline.errors import PipelineError
from pipeline.evaluation import executors


def test_the_default_executor_is_processes_and_ray_params_validate() -> None:
    params = parse_params({})
    assert params.evaluate.executor == "processes" and params.evaluate.ray_address is None
    assert parse_params({"evaluate": {"executor": "ray", "cell_cpus": 0.5, "cell_gpus": 0.25}, "trainer": {"accelerator": "gpu"}}).evaluate.cell_gpus == 0.25
    with pytest.raises(PipelineError, match="evaluate.cell_gpus"):
        parse_params({"evaluate": {"cell_gpus": 0.25}})  # a GPU share for a cell that trains on the CPU
    with pytest.raises(PipelineError, match="evaluate.executor"):
        parse_params({"evaluate": {"executor": "dask"}})
    with pytest.raises(PipelineError, match="evaluate.cell_cpus"):
        parse_params({"evaluate": {"cell_cpus": 0}})


def test_largest_cells_are_submitted_first_and_named_as_the_progress_line_names_them() -> None:
    tasks = [("cell", 5, 0), ("cell", 10, 0), ("cell", 5, 1), ("full", 0, 0)]
    assert executors.longest_first(tasks) == [1, 0, 2, 3]
    assert [executors.describe(t) for t in tasks[2:]] == ["n=5 seed=1", "whole pool, seed=0"]


def test_processes_run_the_given_task_function_and_keep_task_indices(tiny_params: Params) -> None:
    tasks = [("cell", 3, seed) for seed in range(3)]
    one = tiny_params.model_copy(update={"evaluate": tiny_params.evaluate.model_copy(update={"workers": 1})})
    done = dict(executors.results(tasks, None, one, lambda splits, params, task: {"seed": task[2]}))
    assert done == {i: {"seed": i} for i in range(3)}


def test_ray_without_the_extra_is_one_error_naming_the_param(monkeypatch: pytest.MonkeyPatch, tiny_params: Params) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as where it is not installed
    params = tiny_params.model_copy(update={"evaluate": tiny_params.evaluate.model_copy(update={"executor": "ray"})})
    with pytest.raises(PipelineError, match=r"evaluate.executor: .*\[ray\]"):
        list(executors.results([("cell", 3, 0)], None, params))
    assert "skipped" in bench_cluster.bench_cluster(None, params, seeds=1)


def test_projection_puts_the_largest_cells_first_on_the_slot_free_soonest() -> None:
    assert bench_cluster.project([3, 2, 2, 1], slots=2, fixed_s=0, overhead_s=0) == 4
    assert bench_cluster.project([3, 2, 2, 1], slots=8, fixed_s=1, overhead_s=0.5) == 4.5  # one cell each: the longest
    assert bench_cluster.project([1.0] * 200, slots=32, fixed_s=0, overhead_s=0) == 7  # ceil(200 / 32) rounds
