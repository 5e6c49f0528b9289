"""LitCVAE under DistributedDataParallel on two CPU processes (gloo): the fit completes and
reports a finite validation ELBO.

`ddp_spawn` runs inside pytest. Plain `ddp`, what a multi-GPU node would use, relaunches the
running script for the other ranks, so that test runs this file as a script in a subprocess:
`python tests/slow/test_ddp.py OUT.json` (the `__main__` guard below keeps ranks from recursing).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import Params, TrainerConfig, VAEConfig
from pipeline.data.datamodule import ImageDataModule
from pipeline.data.sources import load_dataset
from pipeline.stages.train_vae import build_module
from pipeline.models.training import make_trainer, seed_all

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def fit_one_epoch(strategy: str) -> tuple[dict[str, float], int, int]:
    """(metrics, world size, this process's rank) after one epoch on 48 digits, 2 processes."""
    digits = load_dataset(Params().dataset)
    train, val = digits.subset(np.arange(48)), digits.subset(np.arange(48, 72))
    cfg = TrainerConfig(devices=2, strategy=strategy, num_threads=1, progress_bar=False)
    seed_all(0, cfg)
    module = build_module(train, VAEConfig(hidden_channels=8, latent_dim=4, kl_warmup_epochs=0))
    trainer = make_trainer(cfg, max_epochs=1)
    trainer.fit(module, datamodule=ImageDataModule(train, val, batch_size=8))
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
    return metrics, trainer.world_size, trainer.global_rank


def test_ddp_spawn_fit_reports_a_finite_val_elbo() -> None:
    metrics, world_size, _ = fit_one_epoch("ddp_spawn")
    assert world_size == 2
    assert math.isfinite(metrics["val/elbo"]) and metrics["val/elbo"] < 0
    assert math.isfinite(metrics["train/elbo"])


def test_ddp_relaunch_fit_reports_a_finite_val_elbo(tmp_path: Path) -> None:
    out = tmp_path / "metrics.json"
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", PYTHONPATH=str(ROOT))  # reaches every rank
    done = subprocess.run([sys.executable, __file__, str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["world_size"] == 2
    assert math.isfinite(result["metrics"]["val/elbo"]) and result["metrics"]["val/elbo"] < 0


if __name__ == "__main__":
    metrics, world_size, rank = fit_one_epoch("ddp")
    if rank == 0:
        Path(sys.argv[1]).write_text(json.dumps({"metrics": metrics, "world_size": world_size}))
