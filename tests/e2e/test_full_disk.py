"""A full disk while a stage writes: one `error:` line naming the output and "no space", exit 2,
and the previous outputs intact. Simulated with a file-size limit (RLIMIT_FSIZE), which makes
every write past it fail as a full disk would, on any machine and without root."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import TINY, make_project, tool_env

pytestmark = pytest.mark.slow

PREPROCESS = ["-m", "pipeline.stages.preprocess", "--params", "params.yaml", "--out-dir", "data/processed", "--summary", "reports/data.json"]
TRAIN = ["-m", "pipeline.stages.train_vae", "--params", "params.yaml", "--train", "data/processed/train.parquet",
         "--val", "data/processed/val.parquet", "--model", "models/cvae.ckpt", "--live-dir", "reports/vae"]


def stage(project: Path, args: list[str], max_file_bytes: int | None = None) -> subprocess.CompletedProcess:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    return subprocess.run([sys.executable, *args], cwd=project, env=tool_env(), capture_output=True, text=True,
                          preexec_fn=limit if max_file_bytes else None)


def snapshot(project: Path) -> dict[str, bytes]:
    return {p.relative_to(project).as_posix(): p.read_bytes() for top in ("data/processed", "models", "reports")
            for p in sorted((project / top).rglob("*")) if p.is_file() and ".resume" not in p.parts}


@pytest.mark.parametrize("args,limit,culprit", [(PREPROCESS, 2_000, "data/processed/"), (TRAIN, 100_000, "models/")], ids=["parquet", "checkpoint"])
def test_a_full_disk_is_one_line_and_keeps_the_previous_outputs(tmp_path: Path, args: list[str], limit: int, culprit: str) -> None:
    project = make_project(tmp_path / "p", {**TINY, "vae": {**TINY["vae"], "epochs": 2}})
    assert stage(project, PREPROCESS).returncode == 0
    if args is TRAIN:
        assert stage(project, TRAIN).returncode == 0
    before = snapshot(project)

    result = stage(project, args, max_file_bytes=limit)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "no space" in lines[0] and culprit in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(project) == before  # nothing half-written, nothing lost
