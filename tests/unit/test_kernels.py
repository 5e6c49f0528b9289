"""The CPU kernel pin (pipeline/kernels.py): what it puts in the environment and when it is too late."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import kernels
from pipeline.config import load_params
from pipeline.errors import PipelineError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in (kernels.MODE_VAR, *kernels.PORTABLE_ENV):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(sys, "argv", ["prog"])
    monkeypatch.chdir(ROOT / "tests")  # no params.yaml here
    return monkeypatch


def test_portable_puts_every_pin_in_the_environment_for_child_processes(clean_env: pytest.MonkeyPatch) -> None:
    assert kernels.pin("portable") == "portable"
    assert {key: os.environ[key] for key in kernels.PORTABLE_ENV} == kernels.PORTABLE_ENV
    assert kernels.inherited_env() == {kernels.MODE_VAR: "portable", **kernels.PORTABLE_ENV}


def test_native_undoes_an_inherited_pin_but_keeps_what_the_user_set(clean_env: pytest.MonkeyPatch) -> None:
    kernels.pin("portable")
    clean_env.setenv("MKL_CBWR", "COMPATIBLE")  # the user's own choice, not the pin's value
    assert kernels.pin("native") == "native"
    assert "ATEN_CPU_CAPABILITY" not in os.environ and "ONEDNN_MAX_CPU_ISA" not in os.environ
    assert os.environ["MKL_CBWR"] == "COMPATIBLE"
    assert kernels.inherited_env() == {kernels.MODE_VAR: "native", "MKL_CBWR": "COMPATIBLE"}


def test_the_mode_comes_from_the_params_file_named_on_the_command_line(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    params = tmp_path / "p.yaml"
    params.write_text("trainer:\n  cpu_kernels: native\n")
    clean_env.setattr(sys, "argv", ["prog", "--params", str(params)])
    assert kernels.pin() == "native"
    clean_env.setattr(sys, "argv", ["prog"])  # no file: what a parent pinned, else portable
    assert kernels.pin() == "native"
    clean_env.delenv(kernels.MODE_VAR)
    assert kernels.pin() == "portable"


def test_importing_the_package_pins_before_torch_computes() -> None:
    if native_capability() != "AVX512":
        pytest.skip("this CPU has no AVX-512: the portable AVX2 kernels are already its best")
    code = "import pipeline, torch; torch.ones(3).exp(); print(torch.backends.cpu.get_cpu_capability())"
    env = {k: v for k, v in os.environ.items() if k not in kernels.PORTABLE_ENV and k != kernels.MODE_VAR}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(env, ATEN_CPU_CAPABILITY="avx512"), capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "AVX2"  # params.yaml says portable, whatever the environment says


def native_capability() -> str:
    code = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    env = {k: v for k, v in os.environ.items() if k not in kernels.PORTABLE_ENV}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.strip()


def test_a_params_file_asking_portable_after_torch_ran_native_kernels_is_one_clear_error(tmp_path: Path) -> None:
    if native_capability() != "AVX512":
        pytest.skip("this CPU has no AVX-512: its native kernels are the portable ones, nothing can be too late")
    params = tmp_path / "params.yaml"
    params.write_text("trainer:\n  cpu_kernels: portable\n")
    code = (
        "import os, torch; torch.ones(3).exp()\n"  # torch computes before the pipeline is imported
        "from pipeline.config import load_params\n"
        f"load_params({str(params)!r})\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in kernels.PORTABLE_ENV and k != kernels.MODE_VAR}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=dict(env, PYTHONPATH=str(ROOT)), capture_output=True, text=True)
    assert out.returncode != 0 and "trainer.cpu_kernels: portable" in out.stderr


def test_load_params_accepts_both_modes_and_rejects_others(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("trainer:\n  cpu_kernels: fastest\n")
    with pytest.raises(PipelineError, match="trainer.cpu_kernels"):
        load_params(params)
    params.write_text("trainer:\n  cpu_kernels: portable\n")
    assert load_params(params).trainer.cpu_kernels == "portable"
