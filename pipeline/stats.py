"""Statistics the evaluation stage reports: seed-level intervals, sample-quality and memorisation.

Everything here is pure numpy/scipy and returns plain Python floats/ints, so results can go
straight into a JSON metrics file. Conventions:

* A quantity that is undefined for the input (an interval from one seed, a ratio over zero)
  is `float("nan")`, never a made-up number.
* Distances are Euclidean on whatever rows the caller passes (flattened pixels or features).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import linalg, stats
from scipy.spatial.distance import cdist

__all__ = [
    "Interval",
    "accuracy",
    "frechet_distance",
    "gap_closed",
    "macro_f1",
    "mean_ci",
    "memorisation",
    "nearest_distances",
    "paired_gain",
    "per_class_accuracy",
    "prdc",
]

NAN = float("nan")
# Largest query-by-reference distance block held in memory at once (~64 MiB of float64).
_BLOCK_ELEMENTS = 1 << 23


@dataclass(frozen=True)
class Interval:
    """A mean over `n` seeds with its two-sided confidence bounds (nan when undefined)."""

    mean: float
    lo: float
    hi: float
    n: int


# --------------------------------------------------------------------------- seed statistics


def _as_1d(values: ArrayLike, name: str) -> NDArray[np.float64]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: a mean over zero seeds is undefined")
    return arr


def mean_ci(values: ArrayLike, confidence: float = 0.95) -> Interval:
    """Student-t interval for the mean over seeds.

    Seeds are few (3-10), so the t distribution, not the normal one, gives honest width.
    One seed says nothing about spread: its bounds are nan. Constant values give lo == hi ==
    mean exactly (checked explicitly, so float rounding in `std` cannot open a fake gap).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    arr = _as_1d(values, "values")
    n = int(arr.size)
    if np.all(arr == arr[0]):
        mean = float(arr[0])
        return Interval(mean, mean if n > 1 else NAN, mean if n > 1 else NAN, n)
    mean = float(arr.mean())
    if n == 1:
        return Interval(mean, NAN, NAN, n)
    sem = float(arr.std(ddof=1)) / math.sqrt(n)
    half = float(stats.t.ppf(0.5 + confidence / 2.0, df=n - 1)) * sem
    return Interval(mean, mean - half, mean + half, n)


def paired_gain(
    treatment: ArrayLike, control: ArrayLike, confidence: float = 0.95
) -> Interval:
    """Mean and t-interval of the per-seed difference treatment - control.

    Pairing by seed removes the seed-to-seed variance both arms share (same split, same
    initialisation), so the interval is far tighter than comparing two independent means.
    Inputs must list the same seeds in the same order.
    """
    t = _as_1d(treatment, "treatment")
    c = _as_1d(control, "control")
    if t.shape != c.shape:
        raise ValueError(
            f"paired_gain needs one control per treatment seed, got {t.size} vs {c.size}"
        )
    return mean_ci(t - c, confidence)


def gap_closed(arm_mean: float, real_mean: float, full_mean: float) -> float:
    """Share of the real-only -> full-data gap an arm closes: (arm - real) / (full - real).

    0 means no better than real-only, 1 means as good as having all the real data; it can be
    negative or exceed 1. With no gap to close the share is undefined (nan).
    """
    gap = float(full_mean) - float(real_mean)
    if gap == 0.0 or not np.isfinite(gap):
        return NAN
    return (float(arm_mean) - float(real_mean)) / gap


# --------------------------------------------------------------------------- sample quality


def _as_2d(feats: ArrayLike, name: str, min_rows: int = 1) -> NDArray[np.floating]:
    arr = np.asarray(feats)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be an (N, D) array, got shape {arr.shape}")
    if arr.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {arr.shape[0]}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return arr


def _gaussian(feats: NDArray[np.floating]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    x = feats.astype(np.float64, copy=False)
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def _sqrtm_real(mat: NDArray[np.float64]) -> NDArray[np.float64]:
    # sqrtm warns on (near-)singular input; callers check finiteness themselves.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root = linalg.sqrtm(mat)
    return np.real(root)  # imaginary parts are numerical noise of a PSD product


def frechet_distance(feats_a: ArrayLike, feats_b: ArrayLike, eps: float = 1e-6) -> float:
    """Fréchet distance between Gaussians fitted to two (N, D) feature sets (the FID formula).

    d^2 = |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2}). When the covariance product is
    too singular for sqrtm (few samples, many dims), eps * I is added to both covariances,
    as pytorch-fid does. Rounding can push the result slightly negative: clamped at 0.
    """
    a = _as_2d(feats_a, "feats_a", min_rows=2)
    b = _as_2d(feats_b, "feats_b", min_rows=2)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dims differ: {a.shape[1]} vs {b.shape[1]}")
    mu_a, cov_a = _gaussian(a)
    mu_b, cov_b = _gaussian(b)
    covmean = _sqrtm_real(cov_a @ cov_b)
    if not np.all(np.isfinite(covmean)):
        offset = eps * np.eye(cov_a.shape[0])
        covmean = _sqrtm_real((cov_a + offset) @ (cov_b + offset))
    diff = mu_a - mu_b
    dist = diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(covmean)
    return max(float(dist), 0.0)


def _knn_radii(feats: NDArray[np.floating], k: int) -> NDArray[np.float64]:
    """Distance from each row to its k-th nearest *other* row (column 0 is the row itself)."""
    d = cdist(feats, feats)
    return np.partition(d, k, axis=1)[:, k]


def prdc(real_feats: ArrayLike, fake_feats: ArrayLike, k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage of fake samples against real ones.

    Precision/recall: Kynkäänniemi et al. 2019 (share of fake rows inside the real k-NN
    manifold, and vice versa). Density/coverage: Naeem et al. 2020 (how many real k-NN balls
    hold each fake row, / k; share of real balls holding at least one fake row). Membership
    is strict (distance < radius), as in Naeem et al.'s reference code: each ball then holds
    exactly k points of its own set, which makes density of identical sets exactly 1 (absent
    ties). Caveat: a radius of 0 (k+1 duplicate rows) is an empty ball.

    A k-NN radius needs k other points, so k is clipped to (rows - 1) separately for each
    set; each set needs at least 2 rows. Full pairwise matrices: fine for a few thousand rows.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    real = _as_2d(real_feats, "real_feats", min_rows=2)
    fake = _as_2d(fake_feats, "fake_feats", min_rows=2)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature dims differ: {real.shape[1]} vs {fake.shape[1]}")
    k_real = min(k, real.shape[0] - 1)
    k_fake = min(k, fake.shape[0] - 1)
    real_radii = _knn_radii(real, k_real)
    fake_radii = _knn_radii(fake, k_fake)
    d_rf = cdist(real, fake)  # (n_real, n_fake)
    in_real_balls = d_rf < real_radii[:, None]
    in_fake_balls = d_rf < fake_radii[None, :]
    return {
        "precision": float(in_real_balls.any(axis=0).mean()),
        "recall": float(in_fake_balls.any(axis=1).mean()),
        "density": float(in_real_balls.sum(axis=0).mean() / k_real),
        "coverage": float(in_real_balls.any(axis=1).mean()),
    }


# --------------------------------------------------------------------------- memorisation


def nearest_distances(query: ArrayLike, reference: ArrayLike) -> NDArray[np.float64]:
    """Euclidean distance from each query row to its nearest reference row.

    Query rows are processed in blocks so at most ~_BLOCK_ELEMENTS distances live at once
    (100k x 10k fits easily). The nearest row is found with the fast |q|^2 + |r|^2 - 2 q.r
    expansion, then its distance is recomputed directly, so exact copies give exactly 0
    instead of cancellation noise.
    """
    ref = _as_2d(reference, "reference", min_rows=1)
    q_all = _as_2d(query, "query", min_rows=0)
    if q_all.shape[1] != ref.shape[1]:
        raise ValueError(f"feature dims differ: {q_all.shape[1]} vs {ref.shape[1]}")
    dtype = np.result_type(q_all.dtype, ref.dtype, np.float32)
    ref = ref.astype(dtype, copy=False)
    ref_sq = np.einsum("ij,ij->i", ref, ref)
    rows = max(1, _BLOCK_ELEMENTS // ref.shape[0])
    out = np.empty(q_all.shape[0], dtype=np.float64)
    for start in range(0, q_all.shape[0], rows):
        q = q_all[start : start + rows].astype(dtype, copy=False)
        scores = ref_sq[None, :] - 2.0 * (q @ ref.T)  # |q - r|^2 minus the constant |q|^2
        nearest = ref[np.argmin(scores, axis=1)]
        diff = (q - nearest).astype(np.float64)
        out[start : start + q.shape[0]] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    return out


def memorisation(
    synthetic: ArrayLike,
    train: ArrayLike,
    holdout: ArrayLike,
    copy_quantile: float = 0.01,
) -> dict[str, float | int]:
    """Does the generator copy its training images? Compare against genuinely new real images.

    Raw NN distances mean nothing on their own, so the holdout -> train distances set the
    scale: ratio < 1 means synthetic rows sit closer to training rows than unseen real rows
    do. A synthetic row is a near copy when its NN distance is strictly below the
    `copy_quantile` quantile of holdout -> train distances (closer than almost any new real
    image). ratio is nan when the holdout median is 0.
    """
    if not 0.0 <= copy_quantile <= 1.0:
        raise ValueError(f"copy_quantile must lie in [0, 1], got {copy_quantile}")
    syn_nn = nearest_distances(_as_2d(synthetic, "synthetic", min_rows=1), train)
    real_nn = nearest_distances(_as_2d(holdout, "holdout", min_rows=1), train)
    syn_median = float(np.median(syn_nn))
    real_median = float(np.median(real_nn))
    threshold = float(np.quantile(real_nn, copy_quantile))
    copies = int(np.count_nonzero(syn_nn < threshold))
    return {
        "syn_to_train_median": syn_median,
        "real_to_train_median": real_median,
        "ratio": syn_median / real_median if real_median > 0 else NAN,
        "copy_threshold": threshold,
        "near_copies": copies,
        "near_copy_rate": copies / syn_nn.size,
    }


# --------------------------------------------------------------------------- classification


def _labels(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    t = np.asarray(y_true).ravel()
    p = np.asarray(y_pred).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred lengths differ: {t.size} vs {p.size}")
    return t.astype(np.int64), p.astype(np.int64)


def _confusion(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int) -> NDArray[np.int64]:
    """Confusion counts, rows = true class; labels outside [0, num_classes) are an error."""
    t, p = _labels(y_true, y_pred)
    for name, arr in (("y_true", t), ("y_pred", p)):
        if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
            raise ValueError(f"{name} has labels outside [0, {num_classes})")
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Share of exact matches; nan for an empty test set."""
    t, p = _labels(y_true, y_pred)
    return float(np.mean(t == p)) if t.size else NAN


def macro_f1(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int) -> float:
    """Unweighted mean of per-class F1 = 2TP / (2TP + FP + FN).

    Macro, not micro, so a rare class the augmentation targets weighs as much as a common
    one. A class absent from both y_true and y_pred carries no evidence and is left out of
    the mean (sklearn would count it as 0); nan when no class is left.
    """
    cm = _confusion(y_true, y_pred, num_classes)
    tp = np.diag(cm).astype(np.float64)
    denom = cm.sum(axis=0) + cm.sum(axis=1)  # (TP + FP) + (TP + FN)
    seen = denom > 0
    return float(np.mean(2.0 * tp[seen] / denom[seen])) if seen.any() else NAN


def per_class_accuracy(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int) -> list[float]:
    """Per-class recall (share of each true class predicted right); nan for absent classes."""
    cm = _confusion(y_true, y_pred, num_classes)
    support = cm.sum(axis=1)
    return [float(cm[c, c] / support[c]) if support[c] else NAN for c in range(num_classes)]
