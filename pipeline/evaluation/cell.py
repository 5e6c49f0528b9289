"""One cell of the learning curve: a real subset of `size` images per class and one seed.

Inside a cell every model sees the same real images: the VAE is trained on them (val only for
early stopping), the synthetic samples and classic copies are made from them, and each arm's
classifier adds its extra rows to them. Every arm tries the same number of settings on `val`
(`evaluate.budget`, see `selection.py`) and keeps its best; `test` is only scored, once per arm,
after every choice is made. Quality metrics compare samples drawn with real + VAE's chosen
settings with real pool images outside the cell, in the features of the run's assessor CNN,
trained once on `val` (`assessor.py`; never the CNN that filtered the samples).

What differs between scenarios (`evaluate.scenario`: which real rows, the arms, the val metric,
what a cell records beyond the scores) comes from the scenario's module (`scenarios/`), so this
file reads the same for all of them.

With `evaluate.val_per_class` a cell chooses everything (the VAE's best epoch, every arm's
settings) on that many val images per class, drawn per seed (`train_size`: as many as it trains
on), as a user with that few labels would have to (Oliver et al. 2018).

With `evaluate.label_noise` a seeded share of the real labels is flipped first (every model then
sees them); with `evaluate.clean` the cell's VAE audits its real images and the arm `real_cleaned`
trains on them with the label suspects dropped or relabelled (`cleaning.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.config import EvaluateConfig, Params, large_images
from pipeline.data.augment import classic_copies
from pipeline.data.imageset import ImageSet
from pipeline.data.splits import per_class_subset
from pipeline.evaluation import scenarios
from pipeline.evaluation.assessor import run_assessor
from pipeline.evaluation.cleaning import add_label_noise, extra_rows
from pipeline.evaluation.imbalance import Rare
from pipeline.evaluation.quality import sample_quality
from pipeline.evaluation.quality_gain import score_tries
from pipeline.evaluation.scoring import score
from pipeline.evaluation.selection import SampleCache, effective_budget, plan
from pipeline.evaluation.tuning import RowSource, fit_judge, tune
from pipeline.models.classify import TrainingRows, fit_classifier
from pipeline.models.training import single_device
from pipeline.models.vae import fit_cvae

REFERENCE_CAP = 500  # real pool images outside the cell the quality metrics compare with; bounded for speed


@dataclass(frozen=True)
class Splits:
    pool: ImageSet
    val: ImageSet
    test: ImageSet


def chosen_rows(pool: ImageSet, size: int, seed: int, cfg: EvaluateConfig) -> tuple[np.ndarray, Rare | None]:
    """Pool indices of the cell's real images and, in the imbalanced scenario, its rare classes."""
    cell = scenarios.get(cfg.scenario).draw(pool, size, seed, cfg)
    return cell.index, cell.rare


def real_subset(splits: Splits, size: int, seed: int, cfg: EvaluateConfig | None = None) -> tuple[ImageSet, ImageSet, scenarios.Draw]:
    """(the cell's real training images; the real reference of the quality metrics: pool images
    outside every row the cell's models see, at most `REFERENCE_CAP`; and the scenario's draw:
    those rows and what it adds, e.g. the rare classes)."""
    cfg = cfg or EvaluateConfig()
    cell = scenarios.get(cfg.scenario).draw(splits.pool, size, seed, cfg)
    rest = np.setdiff1d(np.arange(len(splits.pool)), cell.used)
    reference = np.random.default_rng(seed).permutation(rest)[:REFERENCE_CAP]
    return splits.pool.subset(cell.index), splits.pool.subset(np.sort(reference)), cell


def cell_val(val: ImageSet, size: int, seed: int, cfg: EvaluateConfig) -> ImageSet:
    """The val images a cell may choose with: `evaluate.val_per_class` per class, or all."""
    if cfg.val_per_class is None:
        return val
    per_class = size if cfg.val_per_class == "train_size" else cfg.val_per_class
    # A seed stream of its own ([seed, 3]), so the val draw does not mirror the training draw.
    return val.subset(per_class_subset(val.labels, per_class, [seed, 3], val.class_names, "evaluate.val_per_class"))


def run_cell(splits: Splits, size: int, seed: int, params: Params) -> dict:
    params = params.model_copy(update={"trainer": single_device(params.trainer)})
    ev = params.evaluate
    scenario = scenarios.get(ev.scenario)
    real, reference, cell = real_subset(splits, size, seed, ev)
    assessor = run_assessor(splits.val, ev, params.trainer, params.seed)  # the whole val split, before a cell_val cut
    splits = Splits(splits.pool, cell_val(splits.val, size, seed, ev), splits.test)
    noisy = add_label_noise(real, ev.label_noise, seed, size)  # before anything trains on the labels
    real = noisy.data
    unlabeled = None if cell.unlabeled is None else splits.pool.images[cell.unlabeled]  # images only: no label read
    vae, best = fit_cvae(real, splits.val, params.cell_vae(), params.trainer, seed, progress_bar=False, unlabeled=unlabeled)
    gen = scenario.generation(params.generate, cell)
    samples = SampleCache(vae.model, real, gen, seed, fit_judge(real, params, seed))
    extra, cleaning = extra_rows(noisy, params, seed)
    extra = {**extra, **scenario.extra_rows(vae, real, unlabeled, params, seed)}
    source = RowSource(real, samples, ev.classic_copies, seed, cell.rare, extra)
    arms = scenario.arms(ev)
    budget = effective_budget(arms, params)
    large = large_images(*real.image_shape[1:])
    plans = {arm: plan(arm, params, budget, seed, i, large) for i, arm in enumerate(arms)}
    tuned = tune(plans, source, splits.val, params, seed, scenario.metric)
    # Sample quality is judged by a CNN that never filtered the samples, nor trained on the cell's
    # images, so label fidelity is not 1.00 by construction. Drawn at a fixed amount
    # (generate.per_class), then matched per class to the reference (`quality.sample_quality`):
    # recall and coverage depend on how many samples there are.
    fixed_amount = {"ratio": None} if gen.per_class else {}
    measured = samples({**tuned[scenario.quality_arm].selection.chosen, **fixed_amount})
    record = {
        "size": size,
        "seed": seed,
        "scores": {arm: score(t.model, splits.test, cell.scored_classes) for arm, t in tuned.items()},
        "selection": {arm: t.selection.to_json() for arm, t in tuned.items()},
        "quality": sample_quality(measured, real, reference, assessor, seed),
        "vae_val_elbo": best.best_metrics.get("val/elbo"),
    }
    # Every scored try's samples measured too: which metric tracks the val gain (quality_gain.py).
    record["quality_tries"] = score_tries(record["selection"], samples, real, reference, assessor, seed)
    if cleaning is not None:
        record["cleaning"] = cleaning
    if ev.val_per_class is not None:
        record["val_size"] = len(splits.val)
    return {**record, **scenario.record(tuned, arms, cell, real, vae, splits.test)}


def run_full(splits: Splits, seed: int, params: Params) -> dict:
    """The practical upper bound: the whole pool with classic augmentation, params' own settings."""
    cfg = params.evaluate
    params = params.model_copy(update={"trainer": single_device(params.trainer)})
    rows = TrainingRows.of(splits.pool) + TrainingRows.of(classic_copies(splits.pool, cfg.classic_copies, seed))
    return score(fit_classifier(rows, cfg, params.trainer, seed), splits.test)
