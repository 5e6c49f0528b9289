"""A DVC remote shared by a team: one person trains the VAE and generates the samples and pushes
them; a teammate's fresh clone pulls them and has nothing to rerun (docs/cluster.md)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.e2e.conftest import run

pytestmark = pytest.mark.slow

SHARED = ["data/processed/train.parquet", "data/processed/pool.parquet", "models/cvae.ckpt", "data/synthetic/train.parquet"]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_dvc_push_then_pull_in_a_fresh_clone_reuses_the_trained_vae_and_samples(tiny_project: Path, tmp_path: Path) -> None:
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    run(["dvc", "repro", "generate"], tiny_project)  # preprocess, train_vae, generate
    run(["dvc", "remote", "add", "-d", "shared", str(tmp_path / "remote")], tiny_project)  # a folder; s3://, ssh://... alike
    run([*git, "add", "-A"], tiny_project)
    run([*git, "commit", "-qm", "trained VAE and samples, with a shared remote"], tiny_project)
    run(["dvc", "push"], tiny_project)

    teammate = tmp_path / "teammate"
    run(["git", "clone", "-q", str(tiny_project), str(teammate)], tmp_path)
    assert not (teammate / "models/cvae.ckpt").exists()
    run(["dvc", "pull", "--with-deps", "generate"], teammate)
    for name in SHARED:
        assert sha(teammate / name) == sha(tiny_project / name), name
    status = run(["dvc", "status", "--with-deps", "generate"], teammate).stdout
    assert "up to date" in status, status  # the pulled outputs match dvc.lock: nothing retrains
