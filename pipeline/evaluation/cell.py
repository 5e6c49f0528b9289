"""One cell of the learning curve: a real subset of `size` images per class and one seed.

Inside a cell every model sees the same real images: the VAE is trained on them (val only for
early stopping), the synthetic samples and classic copies are made from them, and each arm's
classifier adds its extra rows to them. Every arm tries the same number of settings on `val`
(`evaluate.budget`, see `selection.py`) and keeps its best; `test` is only scored, once per arm,
after every choice is made. Quality metrics compare samples drawn with real + VAE's chosen
settings with real pool images outside the cell, in the features of an assessor CNN trained on
other such images (never the CNN that filtered the samples).

In the imbalanced scenario (`evaluate.scenario`) the real images are `size` per rare class (the
rare classes drawn per seed) and `evaluate.common_per_class` per other class; the VAE trains on
that set, the arms are the fixes for imbalance (`arms.IMBALANCED_ARMS`), val choices use balanced
accuracy, and the cell records which non-generative and which generative arm did best on val.

With `evaluate.label_noise` a seeded share of the real labels is flipped first (every model then
sees them); with `evaluate.clean` the cell's VAE audits its real images and the arm `real_cleaned`
trains on them with the label suspects dropped or relabelled (`cleaning.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.config import EvaluateConfig, GenerateConfig, Params
from pipeline.data.augment import classic_copies
from pipeline.data.imageset import ImageSet
from pipeline.data.splits import draw_rare_classes, imbalanced_subset, per_class_subset
from pipeline.evaluation.arms import Arm, arms_for
from pipeline.evaluation.cleaning import add_label_noise, extra_rows
from pipeline.evaluation.imbalance import Rare
from pipeline.evaluation.quality import sample_quality
from pipeline.evaluation.quality_gain import score_tries
from pipeline.evaluation.scoring import accuracy, balanced_accuracy, score
from pipeline.evaluation.selection import (
    IMBALANCE_CANDIDATES,
    SampleCache,
    effective_budget,
    plan,
)
from pipeline.evaluation.tuning import RowSource, Tuned, fit_judge, tune
from pipeline.models.classify import TrainingRows, fit_classifier
from pipeline.models.training import single_device
from pipeline.models.vae import fit_cvae

HOLDOUT_CAP = 1000  # real comparison images for the quality metrics; bounded for speed


@dataclass(frozen=True)
class Splits:
    pool: ImageSet
    val: ImageSet
    test: ImageSet


def chosen_rows(pool: ImageSet, size: int, seed: int, cfg: EvaluateConfig) -> tuple[np.ndarray, Rare | None]:
    """Pool indices of the cell's real images and, in the imbalanced scenario, its rare classes
    with their gap to the smallest common class (what `rare_fill` 1 fills)."""
    if cfg.scenario != "imbalanced":
        return per_class_subset(pool.labels, size, seed, pool.class_names, "evaluate.train_sizes"), None
    rare = draw_rare_classes(pool.num_classes, cfg.rare_classes, seed, pool.class_names)
    chosen = imbalanced_subset(pool.labels, size, cfg.common_per_class, rare, seed, pool.class_names)
    counts = np.bincount(pool.labels[chosen], minlength=pool.num_classes)
    common = min(int(counts[c]) for c in range(pool.num_classes) if c not in rare)
    return chosen, Rare(rare, max(1, common - size))


def real_subset(splits: Splits, size: int, seed: int, cfg: EvaluateConfig | None = None) -> tuple[ImageSet, ImageSet, ImageSet, Rare | None]:
    """(the cell's real training images, and two disjoint sets of pool images outside them: one
    trains the assessor of sample quality, the other is the real reference it compares with;
    and the rare classes, None in the balanced scenario)."""
    chosen, rare = chosen_rows(splits.pool, size, seed, cfg or EvaluateConfig())
    rest = np.setdiff1d(np.arange(len(splits.pool)), chosen)
    rest = np.random.default_rng(seed).permutation(rest)[:HOLDOUT_CAP]
    return splits.pool.subset(chosen), splits.pool.subset(np.sort(rest[0::2])), splits.pool.subset(np.sort(rest[1::2])), rare


def rare_generation(gen: GenerateConfig, rare: Rare) -> GenerateConfig:
    """Sampling settings that draw, per class, as many samples as the largest `rare_fill` adds."""
    return gen.model_copy(update={"per_class": rare.added_per_class(max(IMBALANCE_CANDIDATES["rare_fill"])), "ratio": None})


def run_cell(splits: Splits, size: int, seed: int, params: Params) -> dict:
    params = params.model_copy(update={"trainer": single_device(params.trainer)})
    ev = params.evaluate
    real, assessor_rows, reference, rare = real_subset(splits, size, seed, ev)
    noisy = add_label_noise(real, ev.label_noise, seed, size)  # before anything trains on the labels
    real = noisy.data
    vae, best = fit_cvae(real, splits.val, params.vae, params.trainer, seed, progress_bar=False)
    gen = params.generate if rare is None else rare_generation(params.generate, rare)
    samples = SampleCache(vae.model, real, gen, seed, fit_judge(real, params, seed))
    extra, cleaning = extra_rows(vae.model, noisy, params, seed)
    source = RowSource(real, samples, ev.classic_copies, seed, rare, extra)
    arms = arms_for(ev.scenario, ev.clean, ev.label_noise)
    budget = effective_budget(arms, params)
    plans = {arm: plan(arm, params, budget, seed, i) for i, arm in enumerate(arms)}
    tuned = tune(plans, source, splits.val, params, seed, accuracy if rare is None else balanced_accuracy)
    # Sample quality is judged by a CNN that never filtered the samples: trained on other pool
    # images, so label fidelity is not 1.00 by construction. Drawn at a fixed amount
    # (generate.per_class), then matched per class to the reference (`quality.sample_quality`):
    # recall and coverage depend on how many samples there are.
    assessor = fit_classifier(TrainingRows.of(assessor_rows), params.evaluate, params.trainer, seed, kind="cnn")
    fixed_amount = {"ratio": None} if gen.per_class else {}
    measured = samples({**tuned["real_vae" if rare is None else "vae_rare"].selection.chosen, **fixed_amount})
    record = {
        "size": size,
        "seed": seed,
        "scores": {arm: score(t.model, splits.test, None if rare is None else rare.classes) for arm, t in tuned.items()},
        "selection": {arm: t.selection.to_json() for arm, t in tuned.items()},
        "quality": sample_quality(measured, real, reference, assessor, seed),
        "vae_val_elbo": best.best_metrics.get("val/elbo"),
    }
    # Every scored try's samples measured too: which metric tracks the val gain (quality_gain.py).
    record["quality_tries"] = score_tries(record["selection"], samples, real, reference, assessor, seed)
    if cleaning is not None:
        record["cleaning"] = cleaning
    if rare is not None:
        record["rare_classes"] = list(rare.classes)
        record["class_counts"] = real.class_counts().tolist()
        record["best_by_val"] = best_by_val(tuned, arms)
    return record


def best_by_val(tuned: dict[str, Tuned], arms: tuple[Arm, ...]) -> dict[str, str]:
    """The non-generative and the generative arm with the best val score in this cell (ties: the
    first in registry order), so "the best fix" is chosen as a user would choose it, not on test."""
    out = {}
    for group, generative in (("non_generative", False), ("generative", True)):
        names = [arm.name for arm in arms if arm.generative == generative]
        out[group] = max(names, key=lambda name: (tuned[name].selection.val_acc, -names.index(name)))
    return out


def run_full(splits: Splits, seed: int, params: Params) -> dict:
    """The practical upper bound: the whole pool with classic augmentation, params' own settings."""
    cfg = params.evaluate
    params = params.model_copy(update={"trainer": single_device(params.trainer)})
    rows = TrainingRows.of(splits.pool) + TrainingRows.of(classic_copies(splits.pool, cfg.classic_copies, seed))
    return score(fit_classifier(rows, cfg, params.trainer, seed), splits.test)
