"""Fit, save and load the class-conditional VAE: what the train_vae stage, the learning curve,
the generate stage and the report share.

`fit_cvae` keeps the epoch with the best validation objective (`vae.best_epoch_by`; `val` only, never `test`).
Given unlabeled images (and `vae.semi_supervised` not false) it trains the semi-supervised M2 model.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping

from pipeline.config import TrainerConfig, VAEConfig
from pipeline.data.datamodule import ImageDataModule
from pipeline.data.images import auto_scale, tensor_to_uint8, tile
from pipeline.data.imageset import ImageSet
from pipeline.errors import PipelineError
from pipeline.models.lit_cvae import LitCVAE
from pipeline.models.training import BestWeights, make_trainer, quiet_lightning, seed_all, write_checkpoint



SEMI_SUPERVISED_KEYS = ("semi_supervised", "alpha", "labeled_share")


def is_semi_supervised(cfg: VAEConfig, unlabeled: np.ndarray | None) -> bool:
    """`vae.semi_supervised`: auto trains M2 exactly when there are unlabeled images; true also
    without any (q(y|x) then learns from the alpha term alone: the labeled-only reference)."""
    if cfg.semi_supervised == "auto":
        return unlabeled is not None and len(unlabeled) > 0
    return cfg.semi_supervised


def build_module(data: ImageSet, cfg: VAEConfig, unlabeled: np.ndarray | None = None) -> LitCVAE:
    c, h, w = data.image_shape
    cfg = cfg.for_images(h, w)
    extra = {}
    if is_semi_supervised(cfg, unlabeled):
        total = len(data) + (0 if unlabeled is None else len(unlabeled))
        extra = {"semi_supervised": True, "alpha": cfg.alpha, "labeled_share": len(data) / total}
    return LitCVAE(
        c, h, w, list(data.class_names), cfg.latent_dim, cfg.hidden_channels, cfg.likelihood,
        cfg.lr, cfg.beta, cfg.kl_warmup_epochs, cfg.free_bits, consistency=cfg.consistency, **extra,
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
    unlabeled: np.ndarray | None = None,
) -> tuple[LitCVAE, BestWeights]:
    """Fit on `train` (and `unlabeled` (N, H, W, C) images, semi-supervised), keep the epoch with
    the best validation objective. Used by the stage and by the learning curve, which trains one
    VAE per (size, seed) cell."""
    seed_all(seed, trainer_cfg)
    module = build_module(train, cfg, unlabeled)
    if module.classifier is None:
        unlabeled = None  # vae.semi_supervised: false ignores them
    monitor = f"val/{cfg.best_epoch_by}"  # see LitCVAE.validation_step for why `objective`
    best = BestWeights(monitor, mode="max")
    callbacks: list[pl.Callback] = [best, *(extra_callbacks or [])]
    if cfg.early_stopping_patience:
        # Lightning counts patience in validation checks, the param in epochs.
        checks = math.ceil(cfg.early_stopping_patience / cfg.val_every_n_epochs)
        callbacks.append(EarlyStopping(monitor, mode="max", patience=checks))
    datamodule = ImageDataModule(
        train, val, cfg.batch_size, trainer_cfg.num_workers, augment=cfg.augment, seed=seed, unlabeled=unlabeled
    )
    trainer = make_trainer(
        trainer_cfg, cfg.epochs, callbacks, logger, progress_bar, val_every_n_epochs=cfg.val_every_n_epochs
    )
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    return module, best


class SampleGrid(pl.Callback):
    """Every N epochs, log a grid of samples (one row per class) to dvclive.

    A fit where no epoch hits the interval (fewer epochs than N, or an early stop) logs its last
    epoch's grid when training ends, so the stage's declared images output is never missing.
    N = 0 logs nothing.
    """

    def __init__(self, every_n_epochs: int, per_class: int = 8) -> None:
        self.every, self.per_class = every_n_epochs, per_class
        self.logged = False

    def on_train_start(self, trainer: pl.Trainer, module: LitCVAE) -> None:
        self.logged = False

    def on_train_epoch_end(self, trainer: pl.Trainer, module: LitCVAE) -> None:
        epoch = trainer.current_epoch + 1
        if self.every and epoch % self.every == 0:
            self.log_grid(trainer, module, epoch)

    def on_train_end(self, trainer: pl.Trainer, module: LitCVAE) -> None:
        if self.every and not self.logged:
            self.log_grid(trainer, module, trainer.current_epoch)  # epochs completed by now

    @torch.no_grad()
    def log_grid(self, trainer: pl.Trainer, module: LitCVAE, epoch: int) -> None:
        if not trainer.loggers:
            return
        model = module.model
        z = torch.randn(self.per_class, model.latent_dim, generator=torch.Generator().manual_seed(0))
        rows = []
        for cls in range(model.num_classes):
            y = torch.full((self.per_class,), cls, dtype=torch.long)
            rows.append(list(tensor_to_uint8(model.decode(z.to(module.device), y.to(module.device)))))
        picture = tile(rows, scale=auto_scale(rows[0][0].shape[0]))
        trainer.loggers[0].experiment.log_image(f"samples/epoch_{epoch:04d}.png", picture)
        self.logged = True


def save_model(module: LitCVAE, path: Path) -> None:
    """A lean checkpoint: weights and hyperparameters, no optimizer or absolute paths."""
    hparams = dict(module.hparams)
    if not hparams.get("semi_supervised"):  # a plain VAE's checkpoint stays as it was before M2
        hparams = {key: value for key, value in hparams.items() if key not in SEMI_SUPERVISED_KEYS}
    if not hparams.get("consistency"):  # nor does one trained without the class-consistency term
        hparams.pop("consistency", None)
    payload = {
        "state_dict": module.state_dict(),
        "hyper_parameters": hparams,
        "pytorch-lightning_version": pl.__version__,
    }
    write_checkpoint(payload, path)


def load_cvae(path: Path) -> LitCVAE:
    if not path.exists():
        raise PipelineError(f"{path}: checkpoint not found (run the train_vae stage first)")
    quiet_lightning()
    return LitCVAE.load_from_checkpoint(path, map_location="cpu", weights_only=True).eval()


def file_digest(path: Path) -> str:
    """Short content hash of a checkpoint: the provenance column of every synthetic row."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
