"""Quality of synthetic samples: fidelity, variety and memorisation, against real images.

Pure numpy/scipy returning plain floats. Distances are Euclidean on whatever rows the caller
passes (flattened pixels or features); an undefined ratio is `float("nan")`.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import linalg
from scipy.spatial.distance import cdist

from pipeline.evaluation import quality_suite

if TYPE_CHECKING:
    from pipeline.data.imageset import ImageSet
    from pipeline.models.classify import Classifier

NAN = float("nan")
# The assessor's own accuracy on the real reference images: the ceiling label fidelity is read
# against. Not a property of the samples, so the quality-vs-gain study leaves it out.
JUDGE_KEY = "assessor_accuracy"
# Every quality metric a cell records, in the report's order: the summary, the report's table and
# the quality-vs-gain study (`SAMPLE_KEYS`) read these tuples.
QUALITY_KEYS = (
    "label_fidelity", JUDGE_KEY, "fd", "precision", "recall", "density", "coverage", "diversity_ratio", "memorisation_ratio",
    "near_copy_rate", *quality_suite.SUITE_KEYS,
)
SAMPLE_KEYS = tuple(key for key in QUALITY_KEYS if key != JUDGE_KEY)
# Largest query-by-reference distance block held in memory at once (~64 MiB of float64).
_BLOCK_ELEMENTS = 1 << 23
# An imaginary part of sqrtm above this share of the real part is not rounding noise (pytorch-fid: 1e-3).
_IMAG_RTOL = 1e-3


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
    """Real square root of a covariance product; ValueError, with the reason, when it has none.

    The product of two PSD matrices has a real root, so small imaginary parts are rounding noise
    and are dropped. One above `_IMAG_RTOL` of the real part (pytorch-fid's 1e-3 on the
    diagonal) is not noise: dropping it would silently change the distance.
    """
    with warnings.catch_warnings():  # sqrtm warns on (near-)singular input; checked below
        warnings.simplefilter("ignore")
        root = linalg.sqrtm(mat)
    if not np.all(np.isfinite(root)):
        raise ValueError("sqrtm of the covariance product is not finite")
    if np.iscomplexobj(root):
        imag, real = np.abs(np.diagonal(root).imag).max(), np.abs(np.diagonal(root).real).max()
        if imag > _IMAG_RTOL * real:
            raise ValueError(
                f"sqrtm of the covariance product has an imaginary part of {imag:.3g} on its diagonal "
                f"next to a real part of {real:.3g} (more than {_IMAG_RTOL:g} of it): not rounding noise"
            )
    return np.real(root)


def frechet_distance(feats_a: ArrayLike, feats_b: ArrayLike, eps: float = 1e-6) -> float:
    """Fréchet distance between Gaussians fitted to two (N, D) feature sets (the FID formula).

    d^2 = |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2}). When the covariance product is
    too singular for a real sqrtm (few samples, many dims), eps * I is added to both covariances,
    as pytorch-fid does; if that does not help either, the distance is undefined: nan, with a
    RuntimeWarning giving the reason. Rounding can push the result slightly negative: clamped at 0.
    """
    a = _as_2d(feats_a, "feats_a", min_rows=2)
    b = _as_2d(feats_b, "feats_b", min_rows=2)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dims differ: {a.shape[1]} vs {b.shape[1]}")
    mu_a, cov_a = _gaussian(a)
    mu_b, cov_b = _gaussian(b)
    try:
        covmean = _sqrtm_real(cov_a @ cov_b)
    except ValueError:
        offset = eps * np.eye(cov_a.shape[0])
        try:
            covmean = _sqrtm_real((cov_a + offset) @ (cov_b + offset))
        except ValueError as err:
            warnings.warn(f"frechet_distance is undefined (nan): {err}, even with {eps:g} * I added", RuntimeWarning, stacklevel=2)
            return NAN
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


def mean_pairwise_distance(feats: NDArray[np.floating]) -> float:
    """Mean Euclidean distance over distinct pairs of rows; nan with fewer than 2 rows."""
    if len(feats) < 2:
        return NAN
    d = cdist(feats, feats)
    return float(d.sum() / (len(feats) * (len(feats) - 1)))


def diversity_ratio(
    fake_feats: ArrayLike, fake_labels: ArrayLike, real_feats: ArrayLike, real_labels: ArrayLike
) -> float:
    """How varied samples of a class are next to real images of that class: the mean pairwise
    distance within each class, fake over real, averaged over the classes both sides have.

    1 means as varied as real images; a generator that draws one template per class scores
    near 0 even when every sample is recognisable (which precision and fidelity cannot see).
    nan when no class has 2 rows on both sides."""
    fake, real = _as_2d(fake_feats, "fake_feats"), _as_2d(real_feats, "real_feats")
    fake_labels, real_labels = np.asarray(fake_labels), np.asarray(real_labels)
    ratios = []
    for cls in np.intersect1d(fake_labels, real_labels):
        spread_real = mean_pairwise_distance(real[real_labels == cls])
        spread_fake = mean_pairwise_distance(fake[fake_labels == cls])
        if spread_real > 0 and not np.isnan(spread_fake):
            ratios.append(spread_fake / spread_real)
    return float(np.mean(ratios)) if ratios else NAN


def matched_per_class(synthetic: ImageSet, reference: ImageSet) -> ImageSet:
    """The first samples of each class, as many as `reference` has of that class.

    Recall and coverage depend on how many samples there are (more samples, smaller k-NN balls),
    so they compare equal numbers, class by class, as Naeem et al. 2020 do."""
    keep = [np.flatnonzero(synthetic.labels == cls)[: int(np.sum(reference.labels == cls))] for cls in range(synthetic.num_classes)]
    return synthetic.subset(np.sort(np.concatenate(keep)))


def sample_quality(
    synthetic: ImageSet, real: ImageSet, holdout: ImageSet, judge: Classifier, seed: int = 0, per_class: bool = True
) -> dict:
    """Fidelity, diversity and memorisation of the samples, in the judge CNN's features (and the
    judge's accuracy on `holdout`, `JUDGE_KEY`: what fidelity is read against), with as
    many samples of each class as `holdout` has real images of it; and the field's standard suite
    (`quality_suite`: detection AUROC, α-precision, β-recall, authenticity, identifiability), also
    per class (`"per_class"`) unless `per_class` is False (the per-try scoring skips it: speed).
    BLAS runs on one thread (`quality_suite.suite` says why)."""
    with quality_suite.one_blas_thread():
        return _sample_quality(synthetic, real, holdout, judge, seed, per_class)


def _sample_quality(synthetic: ImageSet, real: ImageSet, holdout: ImageSet, judge: Classifier, seed: int, per_class: bool) -> dict:
    synthetic = matched_per_class(synthetic, holdout)
    syn_x, hold_x, real_x = synthetic.as_float(), holdout.as_float(), real.as_float()
    syn_f, hold_f = judge.features(syn_x), judge.features(hold_x)
    pr = prdc(hold_f, syn_f, k=5)
    memo = memorisation(syn_x.reshape(len(syn_x), -1), real_x.reshape(len(real_x), -1), hold_x.reshape(len(hold_x), -1))
    suite = quality_suite.suite(
        syn_f, synthetic.labels, judge.features(real_x), real.labels, hold_f, holdout.labels, seed=seed, per_class=per_class
    )
    return {
        "label_fidelity": float(np.mean(synthetic.labels == judge.predict(syn_x))),
        JUDGE_KEY: float(np.mean(holdout.labels == judge.predict(hold_x))),
        "fd": frechet_distance(hold_f, syn_f),
        **pr,
        "diversity_ratio": diversity_ratio(syn_f, synthetic.labels, hold_f, holdout.labels),
        "memorisation_ratio": memo["ratio"],
        "near_copy_rate": memo["near_copy_rate"],
        **suite,
    }
