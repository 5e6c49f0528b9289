"""Fitting every setting an arm tries on val, and keeping the best: the arms' equal tuning budget.

`RowSource` builds the training rows of any (arm, setting) from the cell's real images, their
classic copies and the VAE's samples, each made once; in the imbalanced scenario also the rare
classes' added rows, class weights and logit offsets (`imbalance.py`). `tune` trains every tried
setting of every arm together, by successive halving over the training lengths (the rule is
`selection.survivors`), scores each on `val`, and chooses (`selection.choose`).
`test` is not an argument: nothing here can read it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pipeline.config import GenerateConfig, Params, large_images
from pipeline.data.augment import classic_copies
from pipeline.data.imageset import ImageSet
from pipeline.errors import PipelineError
from pipeline.evaluation import imbalance
from pipeline.evaluation.arms import ARMS, BY_NAME, Arm
from pipeline.evaluation.imbalance import Rare
from pipeline.evaluation.scoring import accuracy
from pipeline.evaluation.selection import (
    IMBALANCE_CANDIDATES,
    SampleCache,
    Selection,
    Setting,
    choose,
    data_part,
    effective_budget,
    generation_config,
    plan,
    sampling_part,
    survivors,
)
from pipeline.models.classify import (
    Classifier,
    FitRequest,
    FitRuns,
    TrainingRows,
    fit_classifier,
    fit_classifiers,
)
from pipeline.models.cvae import CVAE
from pipeline.models.training import single_device


class RowSource:
    """The training rows of an arm's setting, built once per distinct combination."""

    def __init__(
        self, real: ImageSet, samples: SampleCache | None, max_copies: int, seed: int, rare: Rare | None = None,
        extra: dict[str, ImageSet | Callable[[Setting], ImageSet]] | None = None,
    ) -> None:
        self.real, self.samples, self.seed = real, samples, seed
        self.max_copies = max_copies
        self.rare = rare  # the imbalanced scenario's rare classes: what `rare_only` arms add to
        # Rows built elsewhere, by kind: "cleaned", "true" (cleaning.py), or per setting: "pseudo",
        # "vae_pseudo" (the semi-supervised scenario's pseudo-labelled unlabeled images).
        self.extra = extra or {}
        self._copies: ImageSet | None = None
        self._rare_pools: dict[str, ImageSet] = {}
        self._built: dict[tuple, TrainingRows] = {}

    def copies(self, n: int) -> ImageSet:
        """The first `n` augmented copies of every real image (drawn once, `max_copies` deep)."""
        if self._copies is None:
            self._copies = classic_copies(self.real, self.max_copies, self.seed)
        return self._copies.subset(slice(0, n * len(self.real)))

    def rows(self, arm: Arm, setting: Setting) -> TrainingRows | None:
        """None when the setting's filter left no samples to train on."""
        key = (arm.rows, arm.loss, arm.rare_only, tuple(sorted(data_part(setting).items())))
        if key not in self._built:
            self._built[key] = self._build(arm, setting)
        return self._built[key]

    def _build(self, arm: Arm, setting: Setting) -> TrainingRows | None:
        if arm.rare_only or arm.loss != "plain":
            return self._build_imbalanced(arm, setting)
        parts: list[TrainingRows] = []
        if "real" in arm.rows:
            parts.append(TrainingRows.of(self.real))
        for kind in arm.rows:
            if kind in self.extra:
                rows = self.extra[kind]
                rows = rows(setting) if callable(rows) else rows
                if len(rows):  # no pseudo-label above the threshold: the arm trains on the rest
                    parts.append(TrainingRows.of(rows))
        if "classic" in arm.rows:
            parts.append(TrainingRows.of(self.copies(int(setting["classic_copies"]))))
        if "vae" in arm.rows:
            synthetic = self.samples(setting)
            if not len(synthetic):
                return None
            parts.append(TrainingRows.of(synthetic, float(setting.get("synthetic_weight", 1.0))))
        return concatenate(parts)


    def _build_imbalanced(self, arm: Arm, setting: Setting) -> TrainingRows | None:
        """Real rows with class weights or a logit offset, or real rows plus the same number of
        added rows per rare class (`rare_fill`) whatever their kind; classic + VAE half of each."""
        real, labels, classes = self.real, self.real.labels, self.real.num_classes
        if arm.loss == "reweight":
            return TrainingRows(real, imbalance.class_weights(labels, classes, float(setting["weight_power"])))
        if arm.loss == "logit_adjust":
            return TrainingRows(real, np.ones(len(real), np.float32), imbalance.logit_offset(labels, classes, float(setting["tau"])))
        if self.rare is None:
            raise ValueError(f"arm {arm.name!r} adds rare rows: the row source needs the rare classes")
        added = self.rare.added_per_class(float(setting["rare_fill"]))
        vae_share = added - added // 2 if "classic" in arm.rows else added
        parts = [TrainingRows.of(real)]
        if "duplicates" in arm.rows:
            parts.append(TrainingRows.of(self._rare_pool("duplicates", added)))
        if "classic" in arm.rows:
            parts.append(TrainingRows.of(self._rare_pool("classic", added - vae_share if "vae" in arm.rows else added)))
        if "vae" in arm.rows:
            synthetic = imbalance.first_per_class(self.samples(setting), self.rare.classes, vae_share)
            if synthetic is None:
                return None
            parts.append(TrainingRows.of(synthetic, float(setting.get("synthetic_weight", 1.0))))
        return concatenate(parts)

    def _rare_pool(self, kind: str, n: int) -> ImageSet:
        """The first `n` duplicates or classic copies of each rare class, drawn once as deep as
        the largest `rare_fill` candidate needs."""
        if kind not in self._rare_pools:
            deepest = self.rare.added_per_class(max(IMBALANCE_CANDIDATES["rare_fill"]))
            if kind == "duplicates":
                self._rare_pools[kind] = imbalance.duplicates(self.real, self.rare.classes, deepest, self.seed)
            else:
                rare_real = self.real.subset(imbalance.rare_mask(self.real.labels, self.rare.classes))
                depth = imbalance.copies_needed(self.real, self.rare.classes, deepest)
                self._rare_pools[kind] = classic_copies(rare_real, depth, self.seed)
        return imbalance.first_per_class(self._rare_pools[kind], self.rare.classes, n)


@dataclass
class Tuned:
    selection: Selection
    model: Classifier


def tune(
    plans: dict[Arm, list[Setting]], source: RowSource, val: ImageSet, params: Params, seed: int,
    metric: Callable[[np.ndarray, np.ndarray], float] = accuracy,
) -> dict[str, Tuned]:
    """Fit every planned setting (batched, by successive halving over the training lengths),
    score each on val by `metric` (accuracy; balanced accuracy in the imbalanced scenario), keep
    each arm's best."""
    requests, owners = [], []
    for arm, settings in plans.items():
        for i, setting in enumerate(settings):
            rows = source.rows(arm, setting)
            if rows is not None:  # every arm tunes its training length and rate (`arms.TRAINING`)
                requests.append(FitRequest(rows, int(setting["steps"]), float(setting["lr"])))
                owners.append((arm.name, i))
    x_val = val.as_float()

    def val_score(model: Classifier) -> float:
        return metric(val.labels, model.predict(x_val))

    if params.evaluate.classifier == "logreg":  # no training length: nothing to halve
        models = dict(zip(owners, fit_classifiers(requests, params.evaluate, params.trainer, seed)))
        scores, stopped = {owner: val_score(m) for owner, m in models.items()}, {}
    else:
        models, scores, stopped = _halving(requests, owners, val_score, len(val), params, seed)
    tuned = {}
    for arm, settings in plans.items():
        val_acc = [scores.get((arm.name, i)) for i in range(len(settings))]
        arm_stopped = {i: steps for (name, i), steps in stopped.items() if name == arm.name}
        selection = choose(settings, val_acc, len(val), arm_stopped)
        tuned[arm.name] = Tuned(selection, models[(arm.name, settings.index(selection.chosen))])
    return tuned


def _halving(
    requests: list[FitRequest], owners: list[tuple[str, int]], val_score: Callable[[Classifier], float], val_size: int,
    params: Params, seed: int,
) -> tuple[dict, dict, dict]:
    """(model, val score, and the length its run stopped at) per (arm, try): every run trains to
    the shortest length; of each arm's runs that need longer, `selection.survivors` go on."""
    runs = FitRuns(requests, params.evaluate, params.trainer, seed)
    models: dict[tuple[str, int], Classifier] = {}
    scores: dict[tuple[str, int], float] = {}
    stopped: dict[tuple[str, int], int] = {}
    for rung in runs.rungs:
        at_rung = runs.advance(rung)
        run_score = {run: val_score(model) for run, model in at_rung.items()}
        contenders: dict[str, list[int]] = {}  # arm -> its runs at this rung that need longer
        for owner, request, run in zip(owners, requests, runs.run_of):
            if run not in at_rung:
                continue
            if request.steps == rung:
                models[owner], scores[owner] = at_rung[run], run_score[run]
            elif run not in contenders.setdefault(owner[0], []):
                contenders[owner[0]].append(run)
        going_on, cut = set(), set()
        for arm_runs in contenders.values():
            for run, keep in zip(arm_runs, survivors([run_score[r] for r in arm_runs], val_size)):
                (going_on if keep else cut).add(run)
        cut -= going_on  # a run two arms share goes on if either keeps it
        runs.stop(cut)
        for owner, request, run in zip(owners, requests, runs.run_of):
            if run in cut and request.steps > rung:
                stopped[owner] = rung
    return models, scores, stopped


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
    settings = plan(arm, params, effective_budget(ARMS, params), params.seed, 0, large_images(*train.image_shape[1:]))
    samples = SampleCache(model, train, params.generate, params.seed, judge)
    selection = tune({arm: settings}, RowSource(train, samples, params.evaluate.classic_copies, params.seed), val, params, params.seed)[arm.name].selection
    # Only what a user reads: val accuracies can differ by one image between CPUs, the choice cannot.
    chosen = sampling_part(selection.chosen)
    return generation_config(params.generate, chosen), {"chosen": chosen, "val_fits": selection.val_fits}, judge


def concatenate(parts: list[TrainingRows]) -> TrainingRows:
    rows = parts[0]
    for part in parts[1:]:
        rows = rows + part
    return rows
