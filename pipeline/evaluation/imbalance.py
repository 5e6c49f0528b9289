"""The imbalanced scenario's fixes: class weights, logit-adjustment offsets, and the rare rows
the adding arms train on.

Every adding arm (duplicates, classic copies, VAE samples, classic + VAE) adds the same number of
rows to each rare class for one value of `rare_fill` (`added_per_class`), so a difference between
them is what the rows are, not how many. Each kind of row is drawn once, as deep as the largest
fill needs, and a smaller fill takes a prefix: the rows at fill 0.5 are inside those at fill 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.data.imageset import ImageSet


@dataclass(frozen=True)
class Rare:
    """A cell's rare classes and the gap (in images per class) between them and the common ones."""

    classes: tuple[int, ...]
    gap: int

    def added_per_class(self, fill: float) -> int:
        """Rows added to every rare class at `rare_fill` = `fill` (at least one)."""
        return max(1, round(fill * self.gap))


def class_weights(labels: np.ndarray, num_classes: int, power: float) -> np.ndarray:
    """Per-row loss weights (N / (classes * n_class))^power: each class weighs the same at power
    1. The loss is normalised per batch, so only the ratios matter."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    per_class = (len(labels) / (num_classes * np.maximum(counts, 1))) ** power
    return per_class[labels].astype(np.float32)


def logit_offset(labels: np.ndarray, num_classes: int, tau: float) -> np.ndarray:
    """tau * log(prior) of the training labels (Menon et al. 2021, logit-adjusted loss). A class
    absent from the rows gets the log of half a row, so the offset stays finite."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    prior = np.maximum(counts, 0.5) / len(labels)
    return (tau * np.log(prior)).astype(np.float32)


def first_per_class(data: ImageSet, classes: tuple[int, ...], n: int) -> ImageSet | None:
    """The first `n` rows of each class in `classes`; None when one has fewer (a filter rejected
    too many samples), so no arm trains on fewer added rows than it is counted for."""
    picks = []
    for cls in classes:
        members = np.flatnonzero(data.labels == cls)
        if len(members) < n:
            return None
        picks.append(members[:n])
    return data.subset(np.concatenate(picks))


def duplicates(real: ImageSet, classes: tuple[int, ...], n: int, seed: int) -> ImageSet:
    """`n` rows per rare class drawn with replacement from its real images: random oversampling."""
    rng = np.random.default_rng([seed, 2])
    picks = [rng.choice(np.flatnonzero(real.labels == cls), n, replace=True) for cls in classes]
    return real.subset(np.concatenate(picks))


def copies_needed(real: ImageSet, classes: tuple[int, ...], n: int) -> int:
    """Augmented copies of every rare image that give each rare class at least `n` rows."""
    return math.ceil(n / max(1, int(min(real.class_counts()[list(classes)]))))


def rare_mask(labels: np.ndarray, classes: tuple[int, ...]) -> np.ndarray:
    return np.isin(labels, classes)
