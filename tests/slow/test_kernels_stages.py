"""Portable kernels: a stage run under two CPU capabilities forced from outside writes the same bytes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import kernels
from tests.e2e.conftest import TINY, deep_update, make_project, tool_env

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def capabilities() -> list[str]:
    """Two ATen capabilities this CPU can run: its best and one below it (avx2 or default)."""
    env = {k: v for k, v in tool_env().items() if k not in kernels.PORTABLE_ENV}
    code = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    best = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.strip().lower()
    return {"avx512": ["avx512", "avx2"], "avx2": ["avx2", "default"]}.get(best, [best])


def train(project: Path, capability: str, out: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pipeline.stages.train_vae", "--params", "params.yaml", "--train", "data/processed/train.parquet",
           "--val", "data/processed/val.parquet", "--model", f"{out}/cvae.ckpt", "--live-dir", f"{out}/live"]
    env = dict(tool_env(), ATEN_CPU_CAPABILITY=capability, MKL_CBWR="COMPATIBLE")  # the pin must win over these
    return subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, check=True)


def test_portable_stage_outputs_are_the_same_under_two_forced_capabilities(tmp_path: Path) -> None:
    caps = capabilities()
    if len(caps) < 2:
        pytest.skip(f"this CPU runs only torch's {caps[0]} kernels: there is no second capability to compare with")
    project = make_project(tmp_path / "p", {**TINY, "vae": {**TINY["vae"], "epochs": 2}})
    subprocess.run([sys.executable, "-m", "pipeline.stages.preprocess", "--params", "params.yaml", "--out-dir", "data/processed",
                    "--summary", "reports/data.json"], cwd=project, env=tool_env(), check=True, capture_output=True)
    for cap in caps:
        train(project, cap, f"out_{cap}")
    for name in ["cvae.ckpt", "live/metrics.json", "live/plots/metrics/val/elbo.tsv"]:
        assert (project / f"out_{caps[0]}" / name).read_bytes() == (project / f"out_{caps[1]}" / name).read_bytes(), name


def test_native_kernels_follow_the_cpu_capability(tmp_path: Path) -> None:
    """With `native` the pin stands aside: torch runs what the environment or the CPU says, so
    outputs may differ between machines (which is the point of `portable`)."""
    caps = capabilities()
    if len(caps) < 2:
        pytest.skip(f"this CPU runs only torch's {caps[0]} kernels: there is no second capability to compare with")
    (tmp_path / "params.yaml").write_text("trainer:\n  cpu_kernels: native\n")
    probe = "import pipeline, torch; torch.ones(1).exp(); print(torch.backends.cpu.get_cpu_capability())"
    # A user's shell: none of the pins this test process inherited from its own `import pipeline`.
    shell = {k: v for k, v in tool_env().items() if k not in kernels.PORTABLE_ENV and k != kernels.MODE_VAR}
    seen = [subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=dict(shell, ATEN_CPU_CAPABILITY=cap, PYTHONPATH=str(ROOT)),
                           capture_output=True, text=True, check=True).stdout.strip().lower() for cap in caps]
    assert seen == caps
