"""One cell of the learning curve: a real subset of `size` images per class and one seed.

Inside a cell every model sees the same real images: the VAE is trained on them (val only for
early stopping), the synthetic samples and classic copies are made from them, and each arm's
classifier adds its extra rows to them. Every arm tries the same number of settings on `val`
(`evaluate.budget`, see `selection.py`) and keeps its best; `test` is only scored, once per arm,
after every choice is made. Quality metrics compare samples drawn with real + VAE's chosen
settings with real pool images outside the cell, in the features of an assessor CNN trained on
other such images (never the CNN that filtered the samples).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.config import Params
from pipeline.data.augment import classic_copies
from pipeline.data.imageset import ImageSet
from pipeline.data.splits import per_class_subset
from pipeline.evaluation.arms import ARMS
from pipeline.evaluation.quality import sample_quality
from pipeline.evaluation.scoring import score
from pipeline.evaluation.selection import SampleCache, effective_budget, plan
from pipeline.evaluation.tuning import RowSource, fit_judge, tune
from pipeline.models.classify import TrainingRows, fit_classifier
from pipeline.models.training import single_device
from pipeline.models.vae import fit_cvae

HOLDOUT_CAP = 1000  # real comparison images for the quality metrics; bounded for speed


@dataclass(frozen=True)
class Splits:
    pool: ImageSet
    val: ImageSet
    test: ImageSet


def real_subset(splits: Splits, size: int, seed: int) -> tuple[ImageSet, ImageSet, ImageSet]:
    """(the cell's real training images, and two disjoint sets of pool images outside them: one
    trains the assessor of sample quality, the other is the real reference it compares with)."""
    chosen = per_class_subset(splits.pool.labels, size, seed, splits.pool.class_names, "evaluate.train_sizes")
    rest = np.setdiff1d(np.arange(len(splits.pool)), chosen)
    rest = np.random.default_rng(seed).permutation(rest)[:HOLDOUT_CAP]
    return splits.pool.subset(chosen), splits.pool.subset(np.sort(rest[0::2])), splits.pool.subset(np.sort(rest[1::2]))


def run_cell(splits: Splits, size: int, seed: int, params: Params) -> dict:
    params = params.model_copy(update={"trainer": single_device(params.trainer)})
    real, assessor_rows, reference = real_subset(splits, size, seed)
    vae, best = fit_cvae(real, splits.val, params.vae, params.trainer, seed, progress_bar=False)
    samples = SampleCache(vae.model, real, params.generate, seed, fit_judge(real, params, seed))
    source = RowSource(real, samples, params.evaluate.classic_copies, seed)
    budget = effective_budget(ARMS, params)
    plans = {arm: plan(arm, params, budget, seed, i) for i, arm in enumerate(ARMS)}
    tuned = tune(plans, source, splits.val, params, seed)
    # Sample quality is judged by a CNN that never filtered the samples: trained on other pool
    # images, so label fidelity is not 1.00 by construction. A fixed amount (generate.per_class):
    # recall and coverage depend on how many samples there are.
    assessor = fit_classifier(TrainingRows.of(assessor_rows), params.evaluate, params.trainer, seed, kind="cnn")
    fixed_amount = {"ratio": None} if params.generate.per_class else {}
    measured = samples({**tuned["real_vae"].selection.chosen, **fixed_amount})
    return {
        "size": size,
        "seed": seed,
        "scores": {arm: score(t.model, splits.test) for arm, t in tuned.items()},
        "selection": {arm: t.selection.to_json() for arm, t in tuned.items()},
        "quality": sample_quality(measured, real, reference, assessor),
        "vae_val_elbo": best.best_score,
    }


def run_full(splits: Splits, seed: int, params: Params) -> dict:
    """The practical upper bound: the whole pool with classic augmentation, params' own settings."""
    cfg = params.evaluate
    params = params.model_copy(update={"trainer": single_device(params.trainer)})
    rows = TrainingRows.of(splits.pool) + TrainingRows.of(classic_copies(splits.pool, cfg.classic_copies, seed))
    return score(fit_classifier(rows, cfg, params.trainer, seed), splits.test)
