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

from pipeline import stats
from pipeline.classify import Classifier, TrainingRows, classic_copies, fit_classifier
from pipeline.config import Params
from pipeline.imageset import ImageSet
from pipeline.selection import SampleCache, choose_on_val, requested
from pipeline.splits import per_class_subset
from pipeline.train_vae import fit_cvae
from pipeline.training import single_device

ARMS = ("real", "real_classic", "real_vae", "real_classic_vae", "synthetic_only")
HOLDOUT_CAP = 1000  # real comparison images for the quality metrics; bounded for speed


@dataclass(frozen=True)
class Splits:
    pool: ImageSet
    val: ImageSet
    test: ImageSet


def score(model: Classifier, test: ImageSet) -> dict:
    predicted = model.predict(test.as_float())
    return {
        "acc": stats.accuracy(test.labels, predicted),
        "f1": stats.macro_f1(test.labels, predicted, test.num_classes),
        "per_class": stats.per_class_accuracy(test.labels, predicted, test.num_classes),
    }


def real_subset(splits: Splits, size: int, seed: int) -> tuple[ImageSet, ImageSet]:
    """(the cell's real training images, pool images outside them for quality metrics)."""
    chosen = per_class_subset(splits.pool.labels, size, seed, splits.pool.class_names, "evaluate.train_sizes")
    rest = np.setdiff1d(np.arange(len(splits.pool)), chosen)
    rest = np.random.default_rng(seed).permutation(rest)[:HOLDOUT_CAP]
    return splits.pool.subset(chosen), splits.pool.subset(np.sort(rest))


def quality(synthetic: ImageSet, real: ImageSet, holdout: ImageSet, judge: Classifier) -> dict:
    """Fidelity, diversity and memorisation of the samples, in the real-data CNN's features."""
    syn_x, hold_x = synthetic.as_float(), holdout.as_float()
    syn_f, hold_f = judge.features(syn_x), judge.features(hold_x)
    pr = stats.prdc(hold_f, syn_f, k=5)
    memo = stats.memorisation(
        syn_x.reshape(len(syn_x), -1), real.as_float().reshape(len(real), -1), hold_x.reshape(len(hold_x), -1)
    )
    return {
        "label_fidelity": stats.accuracy(synthetic.labels, judge.predict(syn_x)),
        "fd": stats.frechet_distance(hold_f, syn_f),
        **pr,
        "memorisation_ratio": memo["ratio"],
        "near_copy_rate": memo["near_copy_rate"],
    }


def run_cell(splits: Splits, size: int, seed: int, params: Params) -> dict:
    cfg = params.evaluate
    params = params.model_copy(update={"trainer": single_device(params.trainer)})
    real, holdout = real_subset(splits, size, seed)
    real_rows = TrainingRows.of(real)
    # A CNN on the real images alone: the filter's judge and the quality metrics' feature space.
    judge = fit_classifier(real_rows, cfg, params.trainer, seed, kind="cnn")
    vae, best = fit_cvae(real, splits.val, params.vae, params.trainer, seed, progress_bar=False)
    sampler = SampleCache(vae.model, real, params.generate, seed, judge)
    classic = real_rows + TrainingRows.of(classic_copies(real, cfg.classic_copies, seed))

    def fit(rows: TrainingRows) -> Classifier:
        return fit_classifier(rows, cfg, params.trainer, seed)

    models = {"real": judge if cfg.classifier == "cnn" else fit(real_rows), "real_classic": fit(classic)}
    request = requested(params.generate, cfg)
    selections = {}
    for arm, base in (("real_vae", real_rows), ("real_classic_vae", classic)):
        selections[arm], models[arm] = choose_on_val(request, base, sampler, fit, splits.val)
    synthetic = sampler(selections["real_vae"].chosen)
    models["synthetic_only"] = fit(TrainingRows.of(synthetic))
    val_acc = {arm: score(models[arm], splits.val)["acc"] for arm in ("real", "real_classic")}
    # A fixed amount (generate.per_class) for the quality metrics: recall and coverage depend on
    # how many samples there are, and the chosen ratio differs between cells.
    fixed_amount = {"ratio": None} if params.generate.per_class else {}
    measured = sampler({**selections["real_vae"].chosen, **fixed_amount})
    return {
        "size": size,
        "seed": seed,
        "scores": {arm: score(models[arm], splits.test) for arm in ARMS},
        "selection": {arm: s.to_json() for arm, s in selections.items()},
        "val_acc": val_acc,
        "quality": quality(measured, real, holdout, judge),
        "vae_val_elbo": best.best_score,
    }


def run_full(splits: Splits, seed: int, params: Params) -> dict:
    """The practical upper bound: the whole pool with classic augmentation."""
    cfg = params.evaluate
    params = params.model_copy(update={"trainer": single_device(params.trainer)})
    rows = TrainingRows.of(splits.pool) + TrainingRows.of(classic_copies(splits.pool, cfg.classic_copies, seed))
    return score(fit_classifier(rows, cfg, params.trainer, seed), splits.test)
