"""The synthetic-data field's standard sample metrics (synthcity's suite), on feature vectors.

* detection AUROC: a classifier two-sample test. A cross-validated linear discriminant tells real
  rows from synthetic ones; its out-of-fold AUROC is 0.5 when it cannot, 1 when it always can.
* α-precision, β-recall (Alaa et al. 2022, ICML): the share of samples inside the real α-ball
  (radius: the α-quantile of real distances to the real mean), against α; the share of real rows
  with a sample nearby (inside their k-NN ball) that lies in the synthetic β-ball, against β. Each
  curve is summarised as 1 - sum|curve - α| / sum α over an α grid (synthcity's integrated score):
  1 on the diagonal, 0 for samples outside the real support, down to -0.5 for a curve at its far
  side (all samples at the real core, an extreme mode collapse).
* authenticity (Alaa et al.): the share of samples that are not closer to their nearest training
  row than that row's own nearest training neighbour is. Copies score 0. A fresh draw from the
  data is not 1 either: it is 1 minus the chance that it and its nearest training row are mutual
  nearest neighbours (about 0.5-0.7 here), the value real images score against each other.
* identifiability: the share of samples closer to a training row of their class than any
  held-out real row of that class is (a closest-record test). Copies score 1; a fresh draw from
  the data scores about 1 / (held-out rows of the class + 1).

Pure numpy/scipy/scikit-learn on the rows the caller passes (the assessor's features in the
pipeline, never the confidence filter's). An undefined value is `float("nan")`.
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.typing import NDArray
from scipy.spatial.distance import cdist
from scipy.stats import rankdata
from threadpoolctl import ThreadpoolController

NAN = float("nan")
SUITE_KEYS = ("detection_auroc", "alpha_precision", "beta_recall", "authenticity", "identifiability")
ALPHAS = np.linspace(0.0, 1.0, 30)  # the α (and β) grid of the curves, synthcity's 30 steps
FOLDS = 5  # cross-validation folds of the detection classifier
RIDGE = 0.1  # the discriminant's ridge, per training row, on standardised features
K_RECALL = 5  # β-recall's real k-NN ball, the k of `quality.prdc`

Array = NDArray[np.floating]


@functools.cache
def _blas() -> ThreadpoolController:
    return ThreadpoolController()  # finding the loaded BLAS takes ~10 ms: once per process


def one_blas_thread():
    """A context in which numpy's BLAS runs on one thread (the cells already fill the cores)."""
    return _blas().limit(limits=1, user_api="blas")


def detection_auroc(real: Array, fake: Array, seed: int = 0) -> float:
    """Out-of-fold AUROC of a classifier telling `fake` rows (1) from `real` rows (0).

    The classifier is a ridge-regularised linear discriminant (least squares on the standardised
    features and their squares, so a difference in spread is found as well as one in mean: pure
    noise around the real mean is told apart). It is closed-form: a logistic regression on the same
    inputs ranks rows alike but took ~100x longer here, too slow to score every try of every cell.
    Folds are stratified and seeded; nan when either side has fewer than 2 rows."""
    folds = min(FOLDS, len(real), len(fake))
    if folds < 2:
        return NAN
    x = np.concatenate([real, fake]).astype(np.float64)
    x = np.concatenate([x, (x - x.mean(axis=0)) ** 2], axis=1)
    y = np.concatenate([np.zeros(len(real)), np.ones(len(fake))])
    score = np.empty(len(y))
    fold = _stratified_folds(y, folds, seed)
    for k in range(folds):
        fit_rows, held = fold != k, fold == k
        mean, std = x[fit_rows].mean(axis=0), x[fit_rows].std(axis=0)
        std[std == 0] = 1.0  # a constant feature (a dead ReLU unit) carries nothing
        a, b = (x[fit_rows] - mean) / std, (x[held] - mean) / std
        gram = a.T @ a + RIDGE * len(fit_rows) * np.eye(a.shape[1])
        weights = np.linalg.solve(gram, a.T @ (y[fit_rows] - y[fit_rows].mean()))
        score[held] = b @ weights
    return auroc(y, score)


def _stratified_folds(y: NDArray, folds: int, seed: int) -> NDArray[np.int64]:
    """A fold number per row: each class's rows shuffled (seeded) and dealt out in turn."""
    fold = np.empty(len(y), dtype=np.int64)
    rng = np.random.default_rng(seed)
    for cls in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == cls))
        fold[rows] = np.arange(len(rows)) % folds
    return fold


def auroc(y: NDArray, score: NDArray) -> float:
    """Area under the ROC curve of `score` for the rows with y == 1 (Mann-Whitney U, ties halved)."""
    ranks = rankdata(score)
    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _integrated(curve: Array) -> float:
    """1 - sum|curve - α| / sum α: 1 when the curve is the diagonal."""
    return float(1.0 - np.abs(curve - ALPHAS).sum() / ALPHAS.sum())


def alpha_precision_curve(real: Array, fake: Array) -> Array:
    """Share of `fake` rows within the α-quantile radius of real rows around the real mean, per α."""
    center = real.mean(axis=0)
    radii = np.quantile(np.linalg.norm(real - center, axis=1), ALPHAS)
    fake_r = np.linalg.norm(fake - center, axis=1)
    return (fake_r[None, :] <= radii[:, None]).mean(axis=1)


def beta_recall_curve(real: Array, fake: Array, k: int = K_RECALL) -> Array:
    """Share of real rows whose nearest fake row lies inside the real row's k-NN ball (among real
    rows) and inside the synthetic β-ball around the fake mean, per β."""
    k = min(k, len(real) - 1)
    d_rr = cdist(real, real)
    real_radius = np.partition(d_rr, k, axis=1)[:, k]  # column 0 is the row itself
    d_rf = cdist(real, fake)
    nearest = d_rf.argmin(axis=1)
    close = d_rf[np.arange(len(real)), nearest] <= real_radius
    center = fake.mean(axis=0)
    fake_r = np.linalg.norm(fake - center, axis=1)
    radii = np.quantile(fake_r, ALPHAS)
    return (close[None, :] & (fake_r[nearest][None, :] <= radii[:, None])).mean(axis=1)


def authenticity(fake: Array, train: Array) -> float:
    """Share of `fake` rows farther from their nearest training row than that row's own nearest
    other training row is. nan with fewer than 2 training rows."""
    if len(train) < 2 or not len(fake):
        return NAN
    d_tt = cdist(train, train)
    np.fill_diagonal(d_tt, np.inf)
    own = d_tt.min(axis=1)
    d_ft = cdist(fake, train)
    nearest = d_ft.argmin(axis=1)
    return float(np.mean(d_ft[np.arange(len(fake)), nearest] > own[nearest]))


def identifying(fake: Array, train: Array, holdout: Array) -> NDArray[np.bool_]:
    """Per fake row: is it closer to the training rows than every held-out row is? (one class)"""
    if not len(train) or not len(holdout):
        return np.zeros(len(fake), dtype=bool)
    threshold = cdist(holdout, train).min()
    return cdist(fake, train).min(axis=1) < threshold


def suite(
    fake: Array, fake_labels: NDArray, train: Array, train_labels: NDArray, holdout: Array, holdout_labels: NDArray,
    seed: int = 0, per_class: bool = True,
) -> dict:
    """The five metrics over all rows (`SUITE_KEYS`) and, with `per_class`, the same within each
    class (`"per_class": {key: [one value per class, nan where undefined]}`).

    `holdout`: real rows the generator never saw, the reference of detection, precision and recall;
    `train`: the rows it trained on, what authenticity and identifiability compare with.
    BLAS runs on one thread: the cells already fill the cores, and a second thread per process
    made the discriminant's small products 5-20x slower on a shared 2-core machine."""
    with one_blas_thread():
        return _suite(fake, fake_labels, train, train_labels, holdout, holdout_labels, seed, per_class)


def _suite(
    fake: Array, fake_labels: NDArray, train: Array, train_labels: NDArray, holdout: Array, holdout_labels: NDArray,
    seed: int, per_class: bool,
) -> dict:
    out = _scores(fake, train, holdout, seed)
    flags = [identifying(fake[fake_labels == c], train[train_labels == c], holdout[holdout_labels == c]) for c in np.unique(fake_labels)]
    out["identifiability"] = float(np.concatenate(flags).mean()) if len(fake) else NAN
    if per_class:
        classes = range(int(max(fake_labels.max(initial=-1), train_labels.max(initial=-1), holdout_labels.max(initial=-1))) + 1)
        rows = [_class_scores(fake[fake_labels == c], train[train_labels == c], holdout[holdout_labels == c], seed) for c in classes]
        out["per_class"] = {key: [row[key] for row in rows] for key in SUITE_KEYS}
    return out


def _scores(fake: Array, train: Array, holdout: Array, seed: int) -> dict[str, float]:
    enough = len(fake) >= 2 and len(holdout) >= 2
    return {
        "detection_auroc": detection_auroc(holdout, fake, seed),
        "alpha_precision": _integrated(alpha_precision_curve(holdout, fake)) if enough else NAN,
        "beta_recall": _integrated(beta_recall_curve(holdout, fake)) if enough else NAN,
        "authenticity": authenticity(fake, train),
    }


def _class_scores(fake: Array, train: Array, holdout: Array, seed: int) -> dict[str, float]:
    out = _scores(fake, train, holdout, seed)
    out["identifiability"] = float(identifying(fake, train, holdout).mean()) if len(fake) else NAN
    return out
