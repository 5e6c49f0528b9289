"""Fitting every setting an arm tries on val, and keeping the best: the arms' equal tuning budget.

`RowSource` builds the training rows of any (arm, setting) from the cell's real images, their
classic copies and the VAE's samples, each made once; `tune` trains every tried setting of every
arm in one batched fit, scores each on `val`, and chooses (`selection.choose`). `test` is not an
argument: nothing here can read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config import GenerateConfig, Params
from pipeline.data.augment import classic_copies
from pipeline.data.imageset import ImageSet
from pipeline.errors import PipelineError
from pipeline.evaluation.arms import ARMS, BY_NAME, Arm
from pipeline.evaluation.scoring import accuracy
from pipeline.evaluation.selection import (
    SampleCache,
    Selection,
    Setting,
    choose,
    data_part,
    effective_budget,
    generation_config,
    plan,
    sampling_part,
)
from pipeline.models.classify import Classifier, FitRequest, TrainingRows, fit_classifier, fit_classifiers
from pipeline.models.cvae import CVAE
from pipeline.models.training import single_device


class RowSource:
    """The training rows of an arm's setting, built once per distinct combination."""

    def __init__(self, real: ImageSet, samples: SampleCache | None, max_copies: int, seed: int) -> None:
        self.real, self.samples, self.seed = real, samples, seed
        self.max_copies = max_copies
        self._copies: ImageSet | None = None
        self._built: dict[tuple, TrainingRows] = {}

    def copies(self, n: int) -> ImageSet:
        """The first `n` augmented copies of every real image (drawn once, `max_copies` deep)."""
        if self._copies is None:
            self._copies = classic_copies(self.real, self.max_copies, self.seed)
        return self._copies.subset(slice(0, n * len(self.real)))

    def rows(self, arm: Arm, setting: Setting) -> TrainingRows | None:
        """None when the setting's filter left no samples to train on."""
        key = (arm.rows, tuple(sorted(data_part(setting).items())))
        if key not in self._built:
            self._built[key] = self._build(arm, setting)
        return self._built[key]

    def _build(self, arm: Arm, setting: Setting) -> TrainingRows | None:
        parts: list[TrainingRows] = []
        if "real" in arm.rows:
            parts.append(TrainingRows.of(self.real))
        if "classic" in arm.rows:
            parts.append(TrainingRows.of(self.copies(int(setting["classic_copies"]))))
        if "vae" in arm.rows:
            synthetic = self.samples(setting)
            if not len(synthetic):
                return None
            parts.append(TrainingRows.of(synthetic, float(setting.get("synthetic_weight", 1.0))))
        rows = parts[0]
        for part in parts[1:]:
            rows = rows + part
        return rows


@dataclass
class Tuned:
    selection: Selection
    model: Classifier


def tune(plans: dict[Arm, list[Setting]], source: RowSource, val: ImageSet, params: Params, seed: int) -> dict[str, Tuned]:
    """Fit every planned setting (one batched run), score each on val, keep each arm's best."""
    requests, owners = [], []
    for arm, settings in plans.items():
        for i, setting in enumerate(settings):
            rows = source.rows(arm, setting)
            if rows is not None:  # every arm tunes its training length and rate (`arms.TRAINING`)
                requests.append(FitRequest(rows, int(setting["steps"]), float(setting["lr"])))
                owners.append((arm.name, i))
    fitted = dict(zip(owners, fit_classifiers(requests, params.evaluate, params.trainer, seed)))
    x_val = val.as_float()
    tuned = {}
    for arm, settings in plans.items():
        models = [fitted.get((arm.name, i)) for i in range(len(settings))]
        val_acc = [None if m is None else accuracy(val.labels, m.predict(x_val)) for m in models]
        selection = choose(settings, val_acc, len(val))
        tuned[arm.name] = Tuned(selection, models[settings.index(selection.chosen)])
    return tuned


def fit_judge(real: ImageSet, params: Params, seed: int) -> Classifier | None:
    """The CNN the confidence filter asks, trained on the same real images as the VAE, no more;
    None when params pin the filter off, so no fit is wasted on a judge nobody asks."""
    if params.generate.min_confidence == 0:
        return None
    return fit_classifier(TrainingRows.of(real), params.evaluate, single_device(params.trainer), seed, kind="cnn")


def choose_sampling(params: Params, model: CVAE, train: ImageSet, val: ImageSet | None) -> tuple[GenerateConfig, dict, Classifier | None]:
    """The generate stage's settings: params' own, or the `auto` ones chosen on `val` exactly as
    the learning curve's real + VAE arm chooses them, with the same budget.

    Returns (settings, the selection for the metrics file, the filter's judge if one is needed)."""
    judge = fit_judge(train, params, params.seed)
    if params.generate.is_resolved():  # an `auto` synthetic_weight alone does not change the samples
        return params.generate, {}, judge
    if val is None:
        raise PipelineError("generate: `auto` settings need the val split (--val)")
    arm = BY_NAME["real_vae"]
    settings = plan(arm, params, effective_budget(ARMS, params), params.seed, 0)
    samples = SampleCache(model, train, params.generate, params.seed, judge)
    selection = tune({arm: settings}, RowSource(train, samples, params.evaluate.classic_copies, params.seed), val, params, params.seed)[arm.name].selection
    # Only what a user reads: val accuracies can differ by one image between CPUs, the choice cannot.
    chosen = sampling_part(selection.chosen)
    return generation_config(params.generate, chosen), {"chosen": chosen, "val_fits": selection.val_fits}, judge
