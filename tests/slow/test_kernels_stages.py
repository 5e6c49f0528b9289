"""Portable kernels: stages run under CPU capabilities and oneDNN knobs forced from outside write the same bytes."""

from __future__ import annotations

import json
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


# oneDNN's own knobs, changed from outside: in the path, each would change the bits (issue #38).
ONEDNN_KNOBS = {"ONEDNN_MAX_CPU_ISA": "SSE41", "ONEDNN_DEFAULT_FPMATH_MODE": "BF16"}
# A query whether NNPACK was built in, not a kernel run.
NOT_KERNELS = {"aten::_nnpack_available"}


def probe(workdir: Path, **env: str) -> tuple[list[str], list[str]]:
    """The kernel probe (tests/kernel_probe.py) with oneDNN's verbose log on: the oneDNN
    primitives it executed and the torch ops it ran."""
    result = subprocess.run([sys.executable, "-m", "tests.kernel_probe", str(workdir)], cwd=ROOT,
                            env=dict(tool_env(), ONEDNN_VERBOSE="1", **env), capture_output=True, text=True, check=True)
    lines = result.stdout.splitlines()
    executed = [line for line in lines if line.startswith("onednn_verbose") and ",exec," in line]
    return executed, json.loads(lines[-1])


def test_portable_work_runs_no_cache_blocked_kernel_and_ignores_onednn_knobs(tmp_path: Path) -> None:
    """train_vae, a cell and the audit (8x8 and 28x28): no oneDNN primitive and no NNPACK op runs,
    so the CPU's cache sizes cannot reach the bits, and oneDNN's knobs change none of them."""
    executed, ops = probe(tmp_path / "default")
    assert executed == [], executed[:5]
    assert [op for op in ops if ("mkldnn" in op or "nnpack" in op) and op not in NOT_KERNELS] == []
    assert {"aten::_slow_conv2d_forward", "aten::slow_conv_transpose2d"} <= set(ops)  # the convolutions did run
    executed, _ = probe(tmp_path / "knobs", **ONEDNN_KNOBS)
    assert executed == []
    written = sorted(path.relative_to(tmp_path / "default") for path in (tmp_path / "default").rglob("*") if path.is_file())
    assert any(path.name == "cvae.ckpt" for path in written) and any(path.name == "cell.json" for path in written)
    for path in written:
        assert (tmp_path / "default" / path).read_bytes() == (tmp_path / "knobs" / path).read_bytes(), path
