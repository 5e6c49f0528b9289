"""One cell of the learning curve: a real subset of `size` images per class and one seed.

Inside a cell every model sees the same real images: the VAE is trained on them (val only for
early stopping), the synthetic samples and classic copies are made from them, and each arm's
classifier adds its extra rows to them. The two VAE arms choose their own sampling settings and
synthetic weight on `val` (see `selection.py`). `test` is only scored, once per arm, after every
choice is made. Quality metrics compare samples drawn with the chosen settings with the rest of
the training pool, real images no model in the cell has seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.config import Params
from pipeline.data.augment import classic_copies
from pipeline.data.imageset import ImageSet
from pipeline.data.splits import per_class_subset
from pipeline.evaluation.arms import NAMES, VAE_ARMS
from pipeline.evaluation.quality import sample_quality
from pipeline.evaluation.scoring import score
from pipeline.evaluation.selection import SampleSearch, fit_judge
from pipeline.models.classify import Classifier, TrainingRows, fit_classifier
from pipeline.models.training import single_device
from pipeline.models.vae import fit_cvae

HOLDOUT_CAP = 1000  # real comparison images for the quality metrics; bounded for speed


@dataclass(frozen=True)
class Splits:
    pool: ImageSet
    val: ImageSet
    test: ImageSet


def real_subset(splits: Splits, size: int, seed: int) -> tuple[ImageSet, ImageSet]:
    """(the cell's real training images, pool images outside them for quality metrics)."""
    chosen = per_class_subset(splits.pool.labels, size, seed, splits.pool.class_names, "evaluate.train_sizes")
    rest = np.setdiff1d(np.arange(len(splits.pool)), chosen)
    rest = np.random.default_rng(seed).permutation(rest)[:HOLDOUT_CAP]
    return splits.pool.subset(chosen), splits.pool.subset(np.sort(rest))


def run_cell(splits: Splits, size: int, seed: int, params: Params) -> dict:
    cfg = params.evaluate
    params = params.model_copy(update={"trainer": single_device(params.trainer)})
    real, holdout = real_subset(splits, size, seed)
    real_rows = TrainingRows.of(real)
    # A CNN on the real images alone: the filter's judge and the quality metrics' feature space.
    judge = fit_judge(real, params, seed)
    vae, best = fit_cvae(real, splits.val, params.vae, params.trainer, seed, progress_bar=False)
    search = SampleSearch(params, vae.model, real, splits.val, seed, judge)
    rows = {"real": real_rows, "real_classic": real_rows + TrainingRows.of(classic_copies(real, cfg.classic_copies, seed))}
    models = {"real": judge if cfg.classifier == "cnn" else search.fit(real_rows), "real_classic": search.fit(rows["real_classic"])}
    selections = {}
    for arm in VAE_ARMS:
        selections[arm.name], models[arm.name] = search.choose(rows[arm.extends])
    synthetic = search.samples(selections["real_vae"].chosen)
    models["synthetic_only"] = search.fit(TrainingRows.of(synthetic))
    val_acc = {arm: score(models[arm], splits.val)["acc"] for arm in ("real", "real_classic")}
    # A fixed amount (generate.per_class) for the quality metrics: recall and coverage depend on
    # how many samples there are, and the chosen ratio differs between cells.
    fixed_amount = {"ratio": None} if params.generate.per_class else {}
    measured = search.samples({**selections["real_vae"].chosen, **fixed_amount})
    return {
        "size": size,
        "seed": seed,
        "scores": {arm: score(models[arm], splits.test) for arm in NAMES},
        "selection": {arm: s.to_json() for arm, s in selections.items()},
        "val_acc": val_acc,
        "quality": sample_quality(measured, real, holdout, judge),
        "vae_val_elbo": best.best_score,
    }


def run_full(splits: Splits, seed: int, params: Params) -> dict:
    """The practical upper bound: the whole pool with classic augmentation."""
    cfg = params.evaluate
    params = params.model_copy(update={"trainer": single_device(params.trainer)})
    rows = TrainingRows.of(splits.pool) + TrainingRows.of(classic_copies(splits.pool, cfg.classic_copies, seed))
    return score(fit_classifier(rows, cfg, params.trainer, seed), splits.test)
