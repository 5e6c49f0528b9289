"""`executor: ray` on a two-node cluster started on this machine (`ray.cluster_utils.Cluster`):
identical outputs with cells on both nodes, a user error as one line, a node lost for good."""

from __future__ import annotations

import functools
import threading
import time
from pathlib import Path

import pytest
import yaml

from pipeline.errors import PipelineError
from pipeline.evaluation import executors
from pipeline.stages import evaluate as stage
from tests.cluster import faults
from tests.cluster.conftest import OBJECT_STORE, TINY, digests, tiny_params

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.slow, pytest.mark.soak]


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    # A dead node is noticed within a second or two (the defaults take ~15 s).
    fast_health = {"health_check_period_ms": 500, "health_check_failure_threshold": 2}
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": OBJECT_STORE, "include_dashboard": False, "_system_config": fast_health})
    worker = cluster.add_node(num_cpus=2, object_store_memory=OBJECT_STORE)
    ray.init(address=cluster.address)
    yield cluster, worker
    ray.shutdown()
    cluster.shutdown()


def test_cells_spread_over_two_nodes_give_byte_identical_outputs(
    cluster, digits: Path, reference: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nodes = tmp_path / "nodes"
    nodes.mkdir()
    monkeypatch.setattr(executors, "run_task", functools.partial(faults.on_node, str(nodes)))
    stage.run(tiny_params(executor="ray"), digits, tmp_path / "reports", show_progress=False)
    assert digests(tmp_path / "reports") == reference
    assert len(list(nodes.iterdir())) == 2  # both nodes ran cells


def test_a_user_error_in_a_cell_is_one_error_line_and_exit_2_as_with_processes(
    cluster, digits: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    def error_line(executor: str) -> str:
        raw = {**TINY, "evaluate": {**TINY["evaluate"], "executor": executor, "train_sizes": [500]}}  # a class has ~100
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
        reports = tmp_path / executor
        with pytest.raises(SystemExit) as exit_:
            stage.main(["--params", str(tmp_path / "params.yaml"), "--data-dir", str(digits), "--reports-dir", str(reports)])
        assert exit_.value.code == 2
        assert not reports.exists()  # nothing half-written
        errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1
        return errors[0]

    line = error_line("ray")
    assert "train_sizes" in line and "Ray" not in line and "Traceback" not in line
    assert line == error_line("processes")


def test_a_node_lost_for_good_ends_the_run_naming_the_cells_not_done(cluster, digits: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cells of 2 CPUs fit only the worker node; once it is gone no node can run them."""
    head, worker = cluster
    monkeypatch.setattr(executors, "run_task", functools.partial(faults.stuck_on, str(tmp_path)))

    def remove_worker_once_a_cell_runs() -> None:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob("started-*")) and time.monotonic() < deadline:
            time.sleep(0.2)
        head.remove_node(worker, allow_graceful=False)

    remover = threading.Thread(target=remove_worker_once_a_cell_runs)
    remover.start()
    try:
        with pytest.raises(PipelineError) as err:
            stage.run(tiny_params(executor="ray", cell_cpus=2), digits, tmp_path / "reports", show_progress=False)
    finally:
        remover.join()
    message = str(err.value)
    assert "\n" not in message
    for cell in ("n=3 seed=0", "n=3 seed=1", "whole pool, seed=0", "whole pool, seed=1"):
        assert cell in message
    assert not (tmp_path / "reports").exists()
