"""Stage 2: train the class-conditional VAE on the real training images only.

`val` is used for monitoring, early stopping and picking the best epoch; `test` is never read.
Interrupted? Rerun: training resumes from `models/.resume/<key>/last.ckpt`, where the key hashes
the params and training data, and that folder is removed once the checkpoint is written.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
from pytorch_lightning.utilities import rank_zero_only

from pipeline.atomic import atomic_path
from pipeline.config import Params, TrainerConfig, VAEConfig, load_params
from pipeline.datamodule import ImageDataModule
from pipeline.errors import cli_guard
from pipeline.grids import auto_scale, tile, to_uint8
from pipeline.imageset import ImageSet
from pipeline.models.lit_cvae import LitCVAE
from pipeline.parquet import read_imageset
from pipeline.training import BestWeights, make_trainer, seed_all

MONITOR = "val/elbo"


def build_module(data: ImageSet, cfg: VAEConfig) -> LitCVAE:
    c, h, w = data.image_shape
    return LitCVAE(
        c, h, w, list(data.class_names), cfg.latent_dim, cfg.hidden_channels, cfg.likelihood,
        cfg.lr, cfg.beta, cfg.kl_warmup_epochs, cfg.free_bits,
    )


def fit_cvae(
    train: ImageSet,
    val: ImageSet,
    cfg: VAEConfig,
    trainer_cfg: TrainerConfig,
    seed: int,
    logger=False,
    extra_callbacks: list[pl.Callback] | None = None,
    ckpt_path: str | None = None,
    progress_bar: bool | None = None,
) -> tuple[LitCVAE, BestWeights]:
    """Fit on `train`, keep the epoch with the best validation ELBO. Used by the stage and by
    the learning curve, which trains one VAE per (size, seed) cell."""
    seed_all(seed, trainer_cfg)
    module = build_module(train, cfg)
    best = BestWeights(MONITOR, mode="max")
    callbacks: list[pl.Callback] = [best, *(extra_callbacks or [])]
    if cfg.early_stopping_patience:
        # Lightning counts patience in validation checks, the param in epochs.
        checks = math.ceil(cfg.early_stopping_patience / cfg.val_every_n_epochs)
        callbacks.append(EarlyStopping(MONITOR, mode="max", patience=checks))
    datamodule = ImageDataModule(
        train, val, cfg.batch_size, trainer_cfg.num_workers, augment=cfg.augment, seed=seed
    )
    trainer = make_trainer(
        trainer_cfg, cfg.epochs, callbacks, logger, progress_bar, val_every_n_epochs=cfg.val_every_n_epochs
    )
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    return module, best


class SampleGrid(pl.Callback):
    """Every N epochs, log a grid of samples (one row per class) to dvclive."""

    def __init__(self, every_n_epochs: int, per_class: int = 8) -> None:
        self.every, self.per_class = every_n_epochs, per_class

    def on_train_epoch_end(self, trainer: pl.Trainer, module: LitCVAE) -> None:
        epoch = trainer.current_epoch + 1
        if not self.every or epoch % self.every or not trainer.loggers:
            return
        model = module.model
        z = torch.randn(self.per_class, model.latent_dim, generator=torch.Generator().manual_seed(0))
        rows = []
        for cls in range(model.num_classes):
            y = torch.full((self.per_class,), cls, dtype=torch.long)
            rows.append(list(to_uint8(model.decode(z.to(module.device), y.to(module.device)))))
        picture = tile(rows, scale=auto_scale(rows[0][0].shape[0]))
        trainer.loggers[0].experiment.log_image(f"samples/epoch_{epoch:04d}.png", picture)


def resume_key(params: Params, train_path: Path) -> str:
    digest = hashlib.sha256(train_path.read_bytes())
    digest.update(json.dumps([params.seed, params.vae.model_dump(), params.trainer.model_dump()], sort_keys=True).encode())
    return digest.hexdigest()[:16]


def save_model(module: LitCVAE, path: Path) -> None:
    """A lean checkpoint: weights and hyperparameters, no optimizer or absolute paths."""
    payload = {
        "state_dict": module.state_dict(),
        "hyper_parameters": dict(module.hparams),
        "pytorch-lightning_version": pl.__version__,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def run(params: Params, train_path: Path, val_path: Path, model_path: Path, live_dir: Path) -> dict:
    from dvclive.lightning import DVCLiveLogger

    train, val = read_imageset(train_path), read_imageset(val_path)
    resume_dir = model_path.parent / ".resume" / resume_key(params, train_path)
    last = resume_dir / "last.ckpt"
    # One rolling checkpoint of the latest epoch, overwritten in place: all that resuming needs.
    checkpoints = ModelCheckpoint(dirpath=resume_dir, filename="last", save_top_k=1, enable_version_counter=False)
    logger = DVCLiveLogger(dir=str(live_dir), dvcyaml=None, save_dvc_exp=False, resume=last.exists())
    module, best = fit_cvae(
        train, val, params.vae, params.trainer, params.seed, logger,
        [checkpoints, SampleGrid(params.vae.sample_every_n_epochs)],
        ckpt_path=str(last) if last.exists() else None,
    )
    summary = {"best_epoch": best.best_epoch + 1, "best_val_elbo": best.best_score}
    if rank_zero_only.rank != 0:  # under DDP every rank gets here; one writes
        return summary
    live = logger.experiment
    for key, value in summary.items():
        live.summary[key] = value
    live.make_summary()
    (live_dir / "params.yaml").unlink(missing_ok=True)  # the checkpoint already keeps hparams
    save_model(module, model_path)
    shutil.rmtree(resume_dir, ignore_errors=True)
    return summary


@cli_guard
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--train", type=Path, default=Path("data/processed/train.parquet"))
    parser.add_argument("--val", type=Path, default=Path("data/processed/val.parquet"))
    parser.add_argument("--model", type=Path, default=Path("models/cvae.ckpt"))
    parser.add_argument("--live-dir", type=Path, default=Path("reports/vae"))
    args = parser.parse_args(argv)
    summary = run(load_params(args.params), args.train, args.val, args.model, args.live_dir)
    print(f"train_vae: best validation ELBO {summary['best_val_elbo']:.2f} nats at epoch {summary['best_epoch']}")


if __name__ == "__main__":
    main()
