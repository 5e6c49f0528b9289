"""`pipeline.bench`'s cluster part on tiny cells with real Ray: every figure there and positive.
No timing assertions: the numbers depend on the machine and on whatever else runs on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.bench.cluster import bench_cluster
from pipeline.data.parquet import read_imageset
from pipeline.evaluation.cell import Splits
from tests.cluster.conftest import tiny_params

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.slow, pytest.mark.soak]


def test_both_executors_are_timed_and_the_projection_shrinks_with_more_cpus(digits: Path) -> None:
    splits = Splits(*(read_imageset(digits / f"{name}.parquet") for name in ("pool", "val", "test")))
    result = bench_cluster(splits, tiny_params(workers=1), seeds=1, say=lambda _: None)

    assert result["ray_vs_processes_ratio"] == pytest.approx(result["ray_wall_s"] / result["processes_wall_s"])
    assert result["ray_task_overhead_s"] > 0 and result["ray_memory_mib"]["ray_own"] > 0
    assert set(result["seconds_per_cell"]["ray"]) == {"n3", "full"}
    default = result["projection"]["default_run"]
    assert default["cells"] == 4  # 2 seeds x 1 size + 2 whole-pool fits, as params say
    assert default["cpus_8_s"] >= default["cpus_32_s"] >= default["cpus_128_s"] > 0
    assert not ray.is_initialized()
