"""Out-of-fold bounds: every audited image is scored by a VAE that never trained on it.

A model judging the images it learned from has memorised their labels and their oddities alike:
wrong labels look right and every new image looks strange. So the audited images are split into
`audit.folds` folds (stratified by label, seeded); for each fold a VAE trains on the other folds
and scores that one. This is cleanlab's discipline (out-of-fold predictions, Northcutt et al.
2021) with the class-conditional VAE as the model.

Within a fold, the epoch kept is chosen on an inner tenth of its training images, never on the
images it will score. The fold VAE uses the `vae` architecture with a schedule sized to its data:
`audit.steps` optimizer steps (at most `vae.epochs` epochs), with warm-up, validation interval and
patience shrunk in proportion, and no consistency judge (it only steers samples' labels, which
the audit never draws).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pipeline.audit.scores import label_bounds
from pipeline.config import Params, VAEConfig
from pipeline.data.imageset import ImageSet
from pipeline.models.vae import fit_cvae

INNER_VAL_SHARE = 0.1  # of a fold's training images, for the epoch kept
FOLD_STREAM = 23  # keeps the fold draws apart from every other seeded draw


def assign_folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """(N,) fold of each image: each class's images shuffled and dealt round-robin, so every
    class with at least two images has one in every fold's training set."""
    rng = np.random.default_rng([seed, FOLD_STREAM])
    fold = np.empty(len(labels), np.int64)
    offset = 0
    for cls in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == cls))
        fold[rows] = (np.arange(len(rows)) + offset) % folds  # a class's remainder lands where the last one's ended
        offset += len(rows)
    return fold


def fold_vae(vae: VAEConfig, steps: int, train_images: int) -> VAEConfig:
    """`vae` with its schedule fitted to `steps` optimizer steps on `train_images` images."""
    batches = math.ceil(train_images / vae.batch_size)
    epochs = max(1, min(vae.epochs, math.ceil(steps / batches)))
    shrink = epochs / vae.epochs
    return vae.model_copy(update={
        "epochs": epochs,
        "kl_warmup_epochs": round(vae.kl_warmup_epochs * shrink),
        "val_every_n_epochs": max(1, round(vae.val_every_n_epochs * shrink)),
        "early_stopping_patience": vae.early_stopping_patience and max(1, round(vae.early_stopping_patience * shrink)),  # 0 stays off
        "sample_every_n_epochs": 0,
        "consistency": 0.0,
        "semi_supervised": False,
        "augment": False,
    })


def inner_split(rows: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, inner validation rows) of a fold's training rows, both in file order."""
    shuffled = np.random.default_rng([seed, FOLD_STREAM, len(rows)]).permutation(rows)
    n_val = max(1, round(INNER_VAL_SHARE * len(rows)))
    return np.sort(shuffled[n_val:]), np.sort(shuffled[:n_val])


@dataclass(frozen=True)
class OutOfFold:
    bounds: np.ndarray  # (N, K) bound of log p(x | y), each row from the VAE of the folds it is not in
    fold: np.ndarray  # (N,) int64, the fold that scored the row


FitFn = Callable[[ImageSet, ImageSet, VAEConfig, Params, int], object]


def out_of_fold_bounds(
    data: ImageSet, params: Params, seed: int, on_fold: Callable[[int, int], None] | None = None, fit: FitFn | None = None,
) -> OutOfFold:
    """Cross-fitted bounds of every image of `data` under every label (`audit.folds` VAEs).

    `on_fold(k, folds)` is called as each fold starts (the stage's progress bar); `fit(train,
    val, vae_cfg, params, seed) -> CVAE` replaces the VAE fit (the tests spy on which rows trained)."""
    cfg = params.audit
    fit = fit or _fit
    fold = assign_folds(data.labels, cfg.folds, seed)
    bounds = np.zeros((len(data), data.num_classes))
    for k in range(cfg.folds):
        if on_fold is not None:
            on_fold(k, cfg.folds)
        scored = np.flatnonzero(fold == k)
        if not len(scored):
            continue
        train_rows, val_rows = inner_split(np.flatnonzero(fold != k), seed + k)
        model = fit(data.subset(train_rows), data.subset(val_rows), fold_vae(params.vae, cfg.steps, len(train_rows)), params, seed + k)
        bounds[scored] = label_bounds(model, data.subset(scored), cfg.samples, seed + k, cfg.batch_size)
    return OutOfFold(bounds, fold)


def _fit(train: ImageSet, val: ImageSet, vae: VAEConfig, params: Params, seed: int):
    module, _ = fit_cvae(train, val, vae, params.trainer, seed, progress_bar=False)
    return module.model
