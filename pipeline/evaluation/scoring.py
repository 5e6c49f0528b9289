"""Scoring a fitted classifier: accuracy, macro-F1 and per-class recall (scikit-learn's)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, recall_score

from pipeline.data.imageset import ImageSet
from pipeline.models.classify import Classifier


def accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    return float(accuracy_score(labels, predicted))


def score(model: Classifier, data: ImageSet) -> dict:
    """Accuracy, macro-F1 (a rare class weighs as much as a common one) and per-class recall;
    a class absent from `data` scores nan and is left out of the macro mean."""
    predicted = model.predict(data.as_float())
    classes = list(range(data.num_classes))
    return {
        "acc": accuracy(data.labels, predicted),
        "f1": float(f1_score(data.labels, predicted, labels=classes, average="macro", zero_division=np.nan)),
        "per_class": recall_score(data.labels, predicted, labels=classes, average=None, zero_division=np.nan).tolist(),
    }
