"""Label noise and label cleaning inside a learning-curve cell (`evaluate.label_noise`, `evaluate.clean`).

Noise: a seeded share of the cell's real labels is flipped to another class before anything
trains, so the VAE, the judge and every arm see the noisy labels, as a user's own data would be.
Cleaning: the cell's real images are audited by the audit stage's own rules (`pipeline.audit`:
cross-fitted VAEs, each judging the images it did not train on, and label flags on the calibrated
posterior at `audit.false_flag_share`), and the `real_cleaned` arm trains on them with the flagged label
suspects dropped or relabelled to the suggested label. Only the cell's real images and its VAE
are read: never `test`, never a true label (those only count the flags' hits afterwards).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.audit.crossfit import out_of_fold_bounds
from pipeline.audit.faults import flip_labels
from pipeline.audit.ranking import assess, log_prior
from pipeline.config import Params
from pipeline.data.imageset import ImageSet
from pipeline.errors import PipelineError

NOISE_STREAM = 17  # keeps the flips' random draws apart from every other seeded draw of the cell


@dataclass(frozen=True)
class Noisy:
    """The cell's real images with the labels its models see, and the truth for scoring."""

    data: ImageSet
    true_labels: np.ndarray  # (N,) int64
    flipped: np.ndarray  # (N,) bool


def add_label_noise(real: ImageSet, share: float, seed: int, size: int) -> Noisy:
    """round(share * N) labels moved to another class, seeded per cell (seed, size); share 0
    returns `real` itself, so a run without noise is the run it always was."""
    if share == 0:
        return Noisy(real, real.labels, np.zeros(len(real), bool))
    labels, flipped = flip_labels(real.labels, share, real.num_classes, np.random.default_rng([seed, size, NOISE_STREAM]))
    return Noisy(ImageSet(real.images, labels, real.class_names), real.labels, flipped)


def clean(noisy: Noisy, params: Params, seed: int) -> tuple[ImageSet, dict]:
    """(the cleaned rows, counts for the cell record): the audit's label suspects among the cell's
    real images dropped or relabelled (`evaluate.clean`)."""
    real = noisy.data
    bounds = out_of_fold_bounds(real, params, seed).bounds
    audit = assess(bounds, real.labels, log_prior(real.labels, real.num_classes), params.audit.outlier_z, params.audit.false_flag_share)
    flag = audit.label_flag
    if params.evaluate.clean == "drop":
        if flag.all():
            raise PipelineError("evaluate.clean: the audit flagged every real image of a cell; use relabel, or more images per class")
        cleaned = real.subset(np.flatnonzero(~flag))
    else:
        cleaned = ImageSet(real.images, np.where(flag, audit.suspect_label, real.labels), real.class_names)
    record = {
        "flagged": int(flag.sum()),
        "flagged_flipped": int((flag & noisy.flipped).sum()),  # hits: the flag found a flipped label
        "suggested_true": int((flag & noisy.flipped & (audit.suspect_label == noisy.true_labels)).sum()),
    }
    return cleaned, record


def extra_rows(noisy: Noisy, params: Params, seed: int) -> tuple[dict[str, ImageSet], dict | None]:
    """The rows of the optional arms (`cleaned`, `true`) for the row source, and the cell's
    cleaning record (None when neither noise nor cleaning is on: the record stays as it was)."""
    ev = params.evaluate
    if ev.clean == "off" and ev.label_noise == 0:
        return {}, None
    rows: dict[str, ImageSet] = {}
    record: dict = {"action": ev.clean, "images": len(noisy.data), "flipped": int(noisy.flipped.sum())}
    if ev.label_noise > 0:
        rows["true"] = ImageSet(noisy.data.images, noisy.true_labels, noisy.data.class_names)
    if ev.clean != "off":
        rows["cleaned"], counts = clean(noisy, params, seed)
        record.update(counts)
    return rows, record
