"""The semi-supervised scenario: `size` labeled images per class plus `evaluate.unlabeled_per_class`
times as many classes pool images whose labels no model reads (drawn at random from the rest of
the pool, without looking at their labels). The cell's VAE trains semi-supervised on both (M2).

Arms (`arms.SEMI_SUPERVISED_ARMS`), each with the same val budget: `real_classic` (the baseline),
`pseudo_label` (self-training: a CNN trained on the labeled images and their classic copies labels
the unlabeled ones; those above a threshold join the training set; rounds and threshold are knobs),
`vae_pseudo` (the same with the VAE's q(y|x) as the labeller), `ssl_vae` (samples of the
semi-supervised VAE) and `ssl_vae_pseudo` (both). The VAE's q(y|x) is scored as a reference row
(`vae_classifier`). Gains are over `real_classic` and over the best non-generative arm
(`real_classic` or `pseudo_label`), chosen per seed on val, never by test means.
"""

from __future__ import annotations

import numpy as np

from pipeline.config import EvaluateConfig, Params
from pipeline.data.augment import classic_copies
from pipeline.data.imageset import ImageSet
from pipeline.data.splits import per_class_subset
from pipeline.errors import PipelineError
from pipeline.evaluation import intervals
from pipeline.evaluation.arms import SEMI_SUPERVISED_ARMS, VAE_CLASSIFIER, Arm
from pipeline.evaluation.scenarios import Draw, Scenario, balanced
from pipeline.evaluation.scoring import accuracy, score
from pipeline.models.classify import Classifier, TrainingRows, fit_classifier

BASELINE = "real_classic"
NON_GENERATIVE = ("real_classic", "pseudo_label")  # what a user could do with the unlabeled images without a VAE
GENERATIVE = ("vae_pseudo", "ssl_vae", "ssl_vae_pseudo")
METRICS = ("acc", "f1")
SELF_TRAINING_CONFIDENCE = 0.9  # what a further round's teacher keeps from the round before


def draw(pool: ImageSet, size: int, seed: int, cfg: EvaluateConfig) -> Draw:
    labeled = per_class_subset(pool.labels, size, seed, pool.class_names, "evaluate.train_sizes")
    rest = np.setdiff1d(np.arange(len(pool)), labeled)
    wanted = cfg.unlabeled_per_class * pool.num_classes
    if wanted > len(rest) // 2:  # the other half stays for the sample-quality metrics' real images
        raise PipelineError(
            f"evaluate.unlabeled_per_class: {wanted} unlabeled images asked, the pool has {len(rest)} outside "
            f"the labeled ones and at most half of them can be unlabeled; lower it"
        )
    unlabeled = np.sort(np.random.default_rng([seed, 4]).permutation(rest)[:wanted])
    return Draw(labeled, unlabeled=unlabeled)


def extra_rows(vae, real: ImageSet, unlabeled: np.ndarray, params: Params, seed: int) -> dict:
    """The pseudo-labelled unlabeled images per setting: by a self-trained CNN, by the VAE's q(y|x)."""
    x = np.ascontiguousarray(unlabeled.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0
    teachers: dict[tuple, np.ndarray] = {}  # (copies, rounds) -> class probabilities of the unlabeled images

    def labelled(probs: np.ndarray, threshold: float) -> ImageSet:
        keep = probs.max(1) >= threshold
        return ImageSet(unlabeled[keep], probs.argmax(1)[keep].astype(np.int64), real.class_names)

    def teacher(copies: int, rounds: int) -> np.ndarray:
        if (copies, rounds) not in teachers:
            rows = TrainingRows.of(real) + TrainingRows.of(classic_copies(real, copies, seed))
            if rounds > 1:  # the previous round's confident labels join the teacher's rows
                previous = labelled(teacher(copies, rounds - 1), SELF_TRAINING_CONFIDENCE)
                rows = rows + TrainingRows.of(previous) if len(previous) else rows
            teachers[copies, rounds] = fit_classifier(rows, params.evaluate, params.trainer, seed, kind="cnn").predict_proba(x)
        return teachers[copies, rounds]

    def pseudo(setting: dict) -> ImageSet:
        probs = teacher(int(setting["classic_copies"]), int(setting["pseudo_rounds"]))
        return labelled(probs, float(setting["pseudo_threshold"]))

    out = {"pseudo": pseudo}
    if vae.classifier is not None:  # vae.semi_supervised: false leaves no q(y|x) to label with
        q = Classifier(vae.classifier).predict_proba(x)
        out["vae_pseudo"] = lambda setting: labelled(q, float(setting["pseudo_threshold"]))
    return out


def arms(cfg: EvaluateConfig) -> tuple[Arm, ...]:
    return SEMI_SUPERVISED_ARMS


def record(tuned: dict, arms: tuple[Arm, ...], cell: Draw, real: ImageSet, vae, test: ImageSet) -> dict:
    """Which arm of each kind did best on val, and q(y|x) of the VAE scored as a classifier."""
    out: dict = {"unlabeled_count": len(cell.unlabeled), "best_by_val": {
        group: max(names, key=lambda name: (tuned[name].selection.val_acc, -names.index(name)))
        for group, names in (("non_generative", NON_GENERATIVE), ("generative", GENERATIVE))
    }}
    if vae.classifier is not None:
        out["reference"] = {VAE_CLASSIFIER.name: score(Classifier(vae.classifier), test)}
    return out


def _series(group: list[dict], names: list[str], metric: str) -> list[float]:
    return [(c["scores"] | c.get("reference", {}))[name][metric] for c, name in zip(group, names)]


def summarize_size(group: list[dict], arms: tuple[Arm, ...], full_acc: list[float]) -> dict:
    """Every arm (and q(y|x)): accuracy and F1, paired gains over `real_classic` and over the best
    non-generative arm chosen on val per seed, with mde, and the share of the gap to `full` closed."""
    n = len(group)
    baseline = _series(group, [BASELINE] * n, "acc")
    picks = {kind: [c["best_by_val"][kind] for c in group] for kind in ("non_generative", "generative")}
    best_fix = _series(group, picks["non_generative"], "acc")
    names = [arm.name for arm in arms] + ([VAE_CLASSIFIER.name] if "reference" in group[0] else [])
    rows = {name: [name] * n for name in names} | {"best_non_generative": picks["non_generative"], "best_generative": picks["generative"]}
    block: dict = {}
    for key, chosen in rows.items():
        acc = _series(group, chosen, "acc")
        entry: dict = {}
        for metric in METRICS:
            entry.update(intervals.interval_keys(metric, intervals.mean_ci(_series(group, chosen, metric))))
        if key != BASELINE:
            entry.update(intervals.gain_keys("gain", acc, baseline))
            entry.update(intervals.gain_keys("gain_vs_best", acc, best_fix))
        entry["gap_closed"] = intervals.gap_closed(float(np.mean(acc)), float(np.mean(baseline)), float(np.mean(full_acc)))
        if key in (arm.name for arm in arms):
            entry["val_fits"] = int(max(c["selection"][key]["val_fits"] for c in group))
        block[key] = entry
    return block


SCENARIO = Scenario(
    name="semi_supervised", arms=arms, draw=draw, metric=accuracy, headline="acc_mean", quality_arm="ssl_vae",
    summarize_size=summarize_size, per_class_means=balanced.per_class_means, plot_tables=balanced.plot_tables,
    record=record, extra_rows=extra_rows, marker="unlabeled_count",
)
