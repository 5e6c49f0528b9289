"""A throwaway copy of the project with tiny params, in which the real DAG runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROJECT_FILES = ["pyproject.toml", "dvc.yaml", "params.yaml", ".dvcignore", ".gitignore", ".dvc/config", ".dvc/.gitignore"]
PROJECT_DIRS = ["pipeline", "data/raw"]

# Small enough that the whole DAG takes seconds, big enough that every code path runs.
TINY = {
    "dataset": {"train_per_class": 3},
    "vae": {"epochs": 3, "val_every_n_epochs": 1, "early_stopping_patience": 0, "sample_every_n_epochs": 2, "hidden_channels": 8},
    "evaluate": {"seeds": [0, 1], "train_sizes": [3], "steps": 4, "classic_copies": 1},
    "trainer": {"progress_bar": False},
    "audit": {"folds": 2, "samples": 4, "steps": 10},
}


def deep_update(base: dict, changes: dict) -> dict:
    for key, value in changes.items():
        base[key] = deep_update(base.get(key, {}), value) if isinstance(value, dict) else value
    return base


def tool_env() -> dict:
    env = dict(os.environ, DVC_NO_ANALYTICS="1", NO_ALBUMENTATIONS_UPDATE="1", PYTHONHASHSEED="0")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.pop("PYTHONPATH", None)
    return env


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=tool_env(), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def make_project(dest: Path, params: dict) -> Path:
    for name in PROJECT_FILES:
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, dest / name)
    for name in PROJECT_DIRS:
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    merged = deep_update(yaml.safe_load((ROOT / "params.yaml").read_text()), params)
    (dest / "params.yaml").write_text(yaml.safe_dump(merged, sort_keys=False))
    run(["git", "init", "-q"], dest)
    run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A"], dest)
    run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init"], dest)  # dvclive needs a commit
    return dest


@pytest.fixture
def tiny_project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project", TINY)
