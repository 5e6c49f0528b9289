"""Scoring a fitted classifier: accuracy, macro-F1 and per-class recall (scikit-learn's); in the
imbalanced scenario also balanced accuracy and the mean recall of the rare classes."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    recall_score,
)

from pipeline.data.imageset import ImageSet
from pipeline.models.classify import Classifier


def accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    return float(accuracy_score(labels, predicted))


def balanced_accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Mean recall over the classes present: every class counts the same, however many rows it has."""
    return float(balanced_accuracy_score(labels, predicted))


def score(model: Classifier, data: ImageSet, rare: tuple[int, ...] | None = None) -> dict:
    """Accuracy, macro-F1 (a rare class weighs as much as a common one) and per-class recall;
    a class absent from `data` scores nan and is left out of the macro mean. Given the rare
    classes, also balanced accuracy and their mean recall (`rare_recall`)."""
    predicted = model.predict(data.as_float())
    classes = list(range(data.num_classes))
    per_class = recall_score(data.labels, predicted, labels=classes, average=None, zero_division=np.nan)
    out = {
        "acc": accuracy(data.labels, predicted),
        "f1": float(f1_score(data.labels, predicted, labels=classes, average="macro", zero_division=np.nan)),
        "per_class": per_class.tolist(),
    }
    if rare is not None:
        out["bal_acc"] = balanced_accuracy(data.labels, predicted)
        out["rare_recall"] = float(np.nanmean(per_class[list(rare)]))
    return out
