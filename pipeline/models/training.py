"""Shared Lightning plumbing: seeding, a Trainer built from `trainer.*` params, best weights.

Everything that varies between a laptop and a GPU node (accelerator, devices, strategy,
precision) comes from params, so stage code never changes to scale out.
"""

from __future__ import annotations

import copy
import io
import logging
import os
import random
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.plugins import TorchCheckpointIO
from pytorch_lightning.utilities import rank_zero_only

from pipeline.atomic import atomic_path
from pipeline.config import TrainerConfig


def quiet_lightning() -> None:
    """Lightning's banners (GPU available, tips about workers) drown the stage's own output."""
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*LeafSpec.*")
    warnings.filterwarnings("ignore", ".*is smaller than the logging interval.*")
    warnings.filterwarnings("ignore", ".*treespec.*")
    warnings.filterwarnings("ignore", ".*validation_step.*val_dataloader.*")
    warnings.filterwarnings("ignore", ".*val_dataloader.*validation_step.*")


def seed_all(seed: int, cfg: TrainerConfig) -> None:
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if cfg.num_threads is not None:
        torch.set_num_threads(cfg.num_threads)
    pl.seed_everything(seed, workers=True, verbose=False)


def make_trainer(
    cfg: TrainerConfig,
    max_epochs: int,
    callbacks: list[pl.Callback] | None = None,
    logger=False,
    progress_bar: bool | None = None,
    validate: bool = True,
    max_steps: int = -1,
    val_every_n_epochs: int = 1,
) -> pl.Trainer:
    quiet_lightning()
    show_bar = cfg.progress_bar if progress_bar is None else progress_bar
    return pl.Trainer(
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        strategy=cfg.strategy,
        precision=cfg.precision,
        max_epochs=max_epochs,
        max_steps=max_steps,
        callbacks=callbacks or [],
        logger=logger,
        plugins=[AtomicCheckpointIO()],
        deterministic=True,
        enable_checkpointing=any(isinstance(c, pl.callbacks.ModelCheckpoint) for c in callbacks or []),
        enable_progress_bar=show_bar,
        enable_model_summary=False,
        log_every_n_steps=1,
        num_sanity_val_steps=0,
        limit_val_batches=1.0 if validate else 0,
        check_val_every_n_epoch=val_every_n_epochs,
    )


def write_checkpoint(payload: dict, path: str | os.PathLike) -> None:
    """Serialise in memory, then write-and-rename: a kill leaves the previous checkpoint whole, and
    a full disk is an OSError naming `path` (torch's own file writer reports neither)."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getbuffer())


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoints (the rolling resume point) written by `write_checkpoint`."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        write_checkpoint(checkpoint, path)


def single_device(cfg: TrainerConfig) -> TrainerConfig:
    """The learning curve's many small fits run one device each (spread cells as experiments)."""
    return cfg.model_copy(update={"devices": 1, "strategy": "auto"})


class BestWeights(pl.Callback):
    """Keep the weights of the best validation epoch in memory, and restore them at the end.

    Cheaper than a checkpoint file per improvement; its state travels inside Lightning's
    checkpoints, so a resumed run still knows its best epoch.
    """

    def __init__(self, monitor: str, mode: str = "max") -> None:
        self.monitor, self.mode = monitor, mode
        self.best_score: float | None = None
        self.best_epoch: int = -1
        self.best_state: dict | None = None
        self.best_metrics: dict[str, float] = {}  # every logged metric at the best epoch

    def on_validation_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        score = trainer.callback_metrics.get(self.monitor)
        if score is None or trainer.sanity_checking:
            return
        score = float(score)
        better = self.best_score is None or (score > self.best_score if self.mode == "max" else score < self.best_score)
        if better:
            self.best_score, self.best_epoch = score, trainer.current_epoch
            self.best_state = copy.deepcopy(module.state_dict())
            self.best_metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}

    def on_fit_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if self.best_state is not None:
            module.load_state_dict(self.best_state)

    def state_dict(self) -> dict:
        return {"best_score": self.best_score, "best_epoch": self.best_epoch, "best_state": self.best_state, "best_metrics": self.best_metrics}

    def load_state_dict(self, state: dict) -> None:
        self.best_score, self.best_epoch = state["best_score"], state["best_epoch"]
        self.best_state = state["best_state"]
        self.best_metrics = state.get("best_metrics", {})


class ResumePoint(pl.Callback):
    """The rolling checkpoint a killed fit resumes from, with the log folder as it stood then.

    The training state is taken at the end of each epoch (where Lightning resumes cleanly), but
    written only at the start of the next, together with a copy of the log: Lightning logs an
    epoch's training metrics after its epoch-end hooks, so only then is the log complete for the
    epoch the weights have seen. Resuming puts that copy back before the logger opens the folder,
    so a resumed fit logs nothing twice and misses nothing, whenever the process died."""

    def __init__(self, path: str | os.PathLike, log_folder: str | os.PathLike) -> None:
        self.path, self.log_folder = Path(path), Path(log_folder)
        self._pending: dict | None = None

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        # Lightning's public save_checkpoint would also write now; the state alone is wanted here.
        self._pending = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)

    def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if self._pending is not None:
            files = sorted(p for p in self.log_folder.rglob("*") if p.is_file()) if self.log_folder.exists() else []
            self._pending["log_folder"] = {p.relative_to(self.log_folder).as_posix(): p.read_bytes() for p in files}
            trainer.strategy.save_checkpoint(self._pending, self.path)
            self._pending = None

    def on_load_checkpoint(self, trainer: pl.Trainer, module: pl.LightningModule, checkpoint: dict) -> None:
        shutil.rmtree(self.log_folder, ignore_errors=True)
        for name, data in checkpoint.get("log_folder", {}).items():
            path = self.log_folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


class GlobalRandomState(pl.Callback):
    """torch's, numpy's and Python's global random states, saved in every checkpoint and restored
    on resume, so the noise a resumed fit draws (the VAE's reparameterisation) is the noise an
    uninterrupted one would have drawn; the loaders' own streams are the datamodule's state."""

    def state_dict(self) -> dict:
        name, keys, *rest = np.random.get_state()
        # plain lists and numbers: resume checkpoints load with weights_only=True
        return {"torch": torch.get_rng_state(), "numpy": [name, keys.tolist(), *rest], "python": random.getstate()}

    def load_state_dict(self, state: dict) -> None:
        torch.set_rng_state(state["torch"])
        name, keys, *rest = state["numpy"]
        np.random.set_state((name, np.array(keys, dtype=np.uint32), *rest))
        random.setstate(tuple(tuple(part) if isinstance(part, list) else part for part in state["python"]))


SYNC_POINTS = ("update_train_step_metrics", "update_train_epoch_metrics", "log_eval_end_metrics")


def called_from(names: tuple[str, ...]) -> bool:
    """Whether a function of one of these names is on the call stack (frame names only)."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name in names:
            return True
        frame = frame.f_back
    return False


def dvclive_logger(live_dir: str, resume: bool) -> pl.loggers.Logger:
    """dvclive's Lightning logger, minus its cost: to decide whether a `log_metrics` call should
    write its files it runs `inspect.stack()`, which reads the source of every frame, about 10 s of
    a 14 s train_vae run on the digits. The same decision from frame names alone; the files are
    the same."""
    from dvclive.lightning import DVCLiveLogger

    class Logger(DVCLiveLogger):
        @rank_zero_only
        def log_metrics(self, metrics, step=None, sync=False) -> None:
            super(DVCLiveLogger, self).log_metrics(metrics, step, sync or called_from(SYNC_POINTS))

    return Logger(dir=live_dir, dvcyaml=None, save_dvc_exp=False, resume=resume)
