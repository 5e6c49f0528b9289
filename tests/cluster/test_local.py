"""`executor: ray` with no address: the run starts a local Ray instance, and stops it after."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from pipeline.evaluation import executors
from pipeline.stages.evaluate import run as evaluate
from tests.cluster import faults
from tests.cluster.conftest import digests, tiny_params

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.slow, pytest.mark.soak]


def test_a_killed_worker_is_retried_and_the_outputs_stay_byte_identical(
    digits: Path, reference: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    assert not ray.is_initialized()
    monkeypatch.setattr(executors, "run_task", functools.partial(faults.killed_once, str(tmp_path)))
    reports = tmp_path / "reports"
    evaluate(tiny_params(executor="ray", workers=2), digits, reports, show_progress=True)

    assert (tmp_path / "killed").is_file()  # a worker did die mid-cell, and Ray reran its cell
    assert digests(reports) == reference
    assert not ray.is_initialized()  # the local instance the run started is gone
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("evaluate:")]
    assert [line.split(" cells")[0] for line in lines] == [f"evaluate: {i}/4" for i in range(1, 5)]  # the same progress line
