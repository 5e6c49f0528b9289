"""How well a score finds known faults: precision and recall among the top k, and AUROC.

k is the number of faults, the natural budget of a reviewer who knew how many there were; at that
k precision and recall are equal by construction, both are reported because either alone is
what readers look for. AUROC says how often a random fault outscores a random clean image, with
no k to choose. Higher score = more suspect, for every method compared.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores; ties broken by position, so the result is repeatable."""
    return np.argsort(-scores, kind="stable")[:k]


def precision_at_k(scores: np.ndarray, truth: np.ndarray, k: int) -> float:
    return float(truth[top_k(scores, k)].mean()) if k else float("nan")


def recall_at_k(scores: np.ndarray, truth: np.ndarray, k: int) -> float:
    return float(truth[top_k(scores, k)].sum() / truth.sum()) if truth.any() else float("nan")


def detection(scores: np.ndarray, truth: np.ndarray, k: int | None = None) -> dict:
    """{k, precision_at_k, recall_at_k, auroc} of `scores` against the bool `truth` (faults)."""
    k = int(truth.sum()) if k is None else k
    both = 0 < truth.sum() < len(truth)
    return {
        "k": k,
        "precision_at_k": precision_at_k(scores, truth, k),
        "recall_at_k": recall_at_k(scores, truth, k),
        "auroc": float(roc_auc_score(truth, scores)) if both else float("nan"),
    }
