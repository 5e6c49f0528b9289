"""LitCVAE under DistributedDataParallel on two CPU processes (gloo): what DDP must get right.

Each rank trains on its own half of the data (the distributed sampler), yet both end with the
same weights (gradients are all-reduced), those weights moved away from the initialisation, and
the validation ELBO, averaged over ranks, improves from the first epoch to the last. A callback
gathers this from both ranks and rank 0 writes it to a JSON file.

`ddp_spawn` runs inside pytest. Plain `ddp`, what a multi-GPU node would use, relaunches the
running script for the other ranks, so that test runs this file as a script in a subprocess:
`python tests/slow/test_ddp.py OUT.json` (the `__main__` guard below keeps ranks from recursing).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from pipeline.config import Params, TrainerConfig, VAEConfig
from pipeline.data.datamodule import ImageDataModule
from pipeline.data.sources import load_dataset
from pipeline.models.training import make_trainer, seed_all
from pipeline.models.vae import build_module

ROOT = Path(__file__).resolve().parents[2]
EPOCHS, TRAIN_ROWS, WORLD = 3, 48, 2
pytestmark = pytest.mark.slow


def flat_weights(module: pl.LightningModule) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()]).double()


class RankReport(pl.Callback):
    """Gathers from every rank what DDP could get wrong; rank 0 writes it to `out` as JSON."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.seen, self.pixel_sum, self.val_elbo = 0, 0.0, []

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.initial = flat_weights(module)

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, outputs, batch, batch_idx: int) -> None:
        x = batch[0]  # (B, C, H, W)
        self.seen += len(x)
        self.pixel_sum += float(x.double().sum())

    def on_validation_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.val_elbo.append(float(trainer.callback_metrics["val/elbo"]))  # synced over ranks

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        final = flat_weights(module)
        weights = module.all_gather(final)  # (world, P)
        shards = module.all_gather(torch.tensor([self.seen, self.pixel_sum], dtype=torch.float64))  # (world, 2)
        if trainer.global_rank == 0:
            self.out.write_text(json.dumps({
                "world_size": trainer.world_size,
                "rows_seen": shards[:, 0].tolist(),
                "pixel_sums": shards[:, 1].tolist(),
                "rank_weight_gap": float((weights - weights[0]).abs().max()),
                "moved": float((final - self.initial).abs().max()),
                "val_elbo": self.val_elbo,
            }))


def fit(strategy: str, out: Path) -> None:
    """EPOCHS epochs on TRAIN_ROWS digits over WORLD processes; rank 0 writes the report to `out`."""
    digits = load_dataset(Params().dataset)
    train, val = digits.subset(np.arange(TRAIN_ROWS)), digits.subset(np.arange(TRAIN_ROWS, TRAIN_ROWS + 24))
    cfg = TrainerConfig(devices=WORLD, strategy=strategy, num_threads=1, progress_bar=False)
    seed_all(0, cfg)
    module = build_module(train, VAEConfig(hidden_channels=8, latent_dim=4, kl_warmup_epochs=0))
    trainer = make_trainer(cfg, max_epochs=EPOCHS, callbacks=[RankReport(out)])
    trainer.fit(module, datamodule=ImageDataModule(train, val, batch_size=8))


def check(report: dict) -> None:
    assert report["world_size"] == WORLD
    # the sampler gives each rank its own half: no rank trains on all the rows, none on the same ones
    assert report["rows_seen"] == [EPOCHS * TRAIN_ROWS / WORLD] * WORLD
    assert report["pixel_sums"][0] != report["pixel_sums"][1]
    # ... and the all-reduced gradients still keep the replicas identical, and they did train
    assert report["rank_weight_gap"] <= 1e-6, report
    assert report["moved"] > 1e-3, report
    assert len(report["val_elbo"]) == EPOCHS and report["val_elbo"][-1] > report["val_elbo"][0], report


def test_ddp_spawn_ranks_train_on_different_halves_into_one_improving_model(tmp_path: Path) -> None:
    fit("ddp_spawn", tmp_path / "report.json")
    check(json.loads((tmp_path / "report.json").read_text()))


def test_ddp_relaunch_ranks_train_on_different_halves_into_one_improving_model(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", PYTHONPATH=str(ROOT))  # reaches every rank
    done = subprocess.run([sys.executable, __file__, str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    check(json.loads(out.read_text()))


if __name__ == "__main__":
    fit("ddp", Path(sys.argv[1]))
