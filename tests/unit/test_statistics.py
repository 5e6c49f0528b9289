"""Known-answer tests for the intervals over seeds and the sample-quality statistics."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from scipy import stats as sps
from scipy.spatial.distance import cdist

from pipeline.evaluation import intervals, quality


# --------------------------------------------------------------------------- mean_ci


def test_ci_constant_values_have_undefined_bounds() -> None:
    """No spread over seeds is no evidence about spread: nan bounds, not a zero-width interval."""
    ci = intervals.mean_ci([0.1, 0.1, 0.1, 0.1])
    assert ci.mean == 0.1 and ci.n == 4
    assert math.isnan(ci.lo) and math.isnan(ci.hi)


def test_ci_matches_hand_computed_t_interval() -> None:
    ci = intervals.mean_ci([1.0, 2.0, 3.0])
    half = sps.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)  # sample std of [1, 2, 3] is 1
    assert ci.n == 3
    assert ci.mean == pytest.approx(2.0)
    assert ci.lo == pytest.approx(2.0 - half)
    assert ci.hi == pytest.approx(2.0 + half)


def test_ci_narrows_with_lower_confidence() -> None:
    wide = intervals.mean_ci([1.0, 2.0, 3.0], confidence=0.99)
    narrow = intervals.mean_ci([1.0, 2.0, 3.0], confidence=0.80)
    assert wide.lo < narrow.lo < narrow.hi < wide.hi


@pytest.mark.parametrize("value", [0.7, 5.0])
def test_ci_single_seed_has_nan_bounds(value: float) -> None:
    ci = intervals.mean_ci([value])
    assert ci.mean == value and ci.n == 1
    assert math.isnan(ci.lo) and math.isnan(ci.hi)


@pytest.mark.parametrize("bad", [[], [[1.0, 2.0]]])
def test_ci_rejects_empty_or_2d(bad: list) -> None:
    with pytest.raises(ValueError):
        intervals.mean_ci(bad)


@pytest.mark.parametrize("confidence", [0.0, 1.0, 95.0])
def test_ci_rejects_bad_confidence(confidence: float) -> None:
    with pytest.raises(ValueError):
        intervals.mean_ci([1.0, 2.0], confidence=confidence)


def test_interval_is_json_serialisable_plain_floats() -> None:
    ci = intervals.mean_ci(np.array([0.5, 0.6, 0.8], dtype=np.float32))
    assert all(type(v) is float for v in (ci.mean, ci.lo, ci.hi)) and type(ci.n) is int
    assert json.loads(json.dumps(dataclasses.asdict(ci)))["n"] == 3


# --------------------------------------------------------------------------- paired_gain


def test_paired_gain_constant_shift_has_undefined_bounds() -> None:
    control = [0.5, 0.25, 0.75, 0.125]
    gain = intervals.paired_gain([c + 2.0 for c in control], control)
    assert gain.mean == 2.0 and gain.n == 4
    assert math.isnan(gain.lo) and math.isnan(gain.hi)


def test_paired_gain_shift_split_only_by_rounding_has_undefined_bounds() -> None:
    """0.9-0.8, 0.5-0.4, 0.4-0.3 differ in the last bits; a t-interval on that would be 'significant'."""
    control = [0.8, 0.4, 0.3]
    gain = intervals.paired_gain([0.9, 0.5, 0.4], control)
    assert len({0.9 - 0.8, 0.5 - 0.4, 0.4 - 0.3}) > 1  # the premise: rounding did split them
    assert gain.mean == pytest.approx(0.1)
    assert math.isnan(gain.lo) and math.isnan(gain.hi)


def test_paired_gain_noisy_shift_ci_contains_shift() -> None:
    rng = np.random.default_rng(0)
    control = rng.normal(0.6, 0.2, size=10)  # large seed-to-seed spread, shared by both arms
    treatment = control + 0.05 + rng.normal(0.0, 0.01, size=10)
    gain = intervals.paired_gain(treatment, control)
    assert gain.lo < 0.05 < gain.hi
    assert gain.lo > 0.0  # pairing removes the shared spread: the gain is clearly positive
    unpaired = intervals.mean_ci(treatment)
    assert gain.hi - gain.lo < unpaired.hi - unpaired.lo


def test_paired_gain_length_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="3 vs 2"):
        intervals.paired_gain([1.0, 2.0, 3.0], [1.0, 2.0])


def test_paired_gain_single_seed_nan_bounds() -> None:
    gain = intervals.paired_gain([0.9], [0.8])
    assert gain.mean == pytest.approx(0.1)
    assert math.isnan(gain.lo) and math.isnan(gain.hi)


# --------------------------------------------------------------------------- gap_closed


@pytest.mark.parametrize(
    ("arm", "real", "full", "expected"),
    [
        (0.7, 0.6, 0.8, 0.5),
        (0.6, 0.6, 0.8, 0.0),
        (0.8, 0.6, 0.8, 1.0),
        (0.5, 0.6, 0.8, -0.5),
        (0.9, 0.6, 0.8, 1.5),
    ],
)
def test_gap_closed_known_values(arm: float, real: float, full: float, expected: float) -> None:
    assert intervals.gap_closed(arm, real, full) == pytest.approx(expected)


def test_gap_closed_no_gap_is_nan() -> None:
    assert math.isnan(intervals.gap_closed(0.7, 0.6, 0.6))


# --------------------------------------------------------------------------- frechet_distance


def test_frechet_identical_sets_is_zero() -> None:
    feats = np.random.default_rng(1).normal(size=(500, 8))
    assert quality.frechet_distance(feats, feats) == pytest.approx(0.0, abs=1e-6)


def test_frechet_mean_shift_gives_squared_norm() -> None:
    rng = np.random.default_rng(2)
    shift = np.array([3.0, -1.0, 2.0, 0.0])  # squared norm 14
    a = rng.normal(size=(20000, 4))
    b = rng.normal(size=(20000, 4)) + shift
    assert quality.frechet_distance(a, b) == pytest.approx(14.0, rel=0.02)


def test_frechet_scaled_covariance_known_value() -> None:
    # N(0, I) vs N(0, 4I) in D dims: Tr(I + 4I - 2*2I) = D.
    rng = np.random.default_rng(3)
    a = rng.normal(size=(20000, 3))
    b = 2.0 * rng.normal(size=(20000, 3))
    assert quality.frechet_distance(a, b) == pytest.approx(3.0, rel=0.05)


def test_frechet_singular_covariance_is_finite_and_nonnegative() -> None:
    rng = np.random.default_rng(4)
    a = rng.normal(size=(5, 20))  # 5 samples in 20 dims: rank-deficient covariances
    b = rng.normal(size=(5, 20))
    d = quality.frechet_distance(a, b)
    assert type(d) is float and math.isfinite(d) and d >= 0.0


def test_sqrtm_drops_rounding_noise_but_not_a_real_imaginary_part() -> None:
    root = quality._sqrtm_real(np.diag([4.0, -1e-12]))  # sqrt gives 1e-6 j next to 2: noise
    assert root.dtype == np.float64
    assert np.allclose(root, np.diag([2.0, 0.0]), atol=1e-5)
    with pytest.raises(ValueError, match="imaginary part of 1 .* real part of 2"):
        quality._sqrtm_real(np.diag([4.0, -1.0]))  # sqrt gives 1 j next to 2: not noise


def test_frechet_is_nan_with_the_reason_when_sqrtm_is_not_real(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quality.linalg, "sqrtm", lambda mat: np.diag([2.0, 1.0j]))  # even with the eps offset
    rng = np.random.default_rng(5)
    with pytest.warns(RuntimeWarning, match="frechet_distance is undefined .*imaginary part"):
        d = quality.frechet_distance(rng.normal(size=(50, 2)), rng.normal(size=(50, 2)))
    assert math.isnan(d)


def test_frechet_dim_mismatch_raises() -> None:
    with pytest.raises(ValueError):
        quality.frechet_distance(np.zeros((4, 2)), np.zeros((4, 3)))


# --------------------------------------------------------------------------- prdc


def test_prdc_identical_sets() -> None:
    feats = np.random.default_rng(5).normal(size=(300, 6))
    m = quality.prdc(feats, feats, k=5)
    assert m["precision"] == 1.0 and m["recall"] == 1.0 and m["coverage"] == 1.0
    # strict balls hold exactly k points each, so without ties density is exactly 1.
    assert m["density"] == pytest.approx(1.0)
    assert all(type(v) is float for v in m.values())


def test_prdc_disjoint_far_sets_are_zero() -> None:
    rng = np.random.default_rng(6)
    real = rng.normal(size=(200, 4))
    fake = rng.normal(size=(150, 4)) + 1000.0
    m = quality.prdc(real, fake, k=5)
    assert m == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_prdc_mode_collapse_keeps_precision_loses_recall() -> None:
    rng = np.random.default_rng(7)
    real = np.concatenate([rng.normal(size=(200, 2)), rng.normal(size=(200, 2)) + 50.0])
    fake = rng.normal(size=(200, 2))  # only the first mode
    m = quality.prdc(real, fake, k=5)
    assert m["precision"] > 0.9
    assert 0.4 < m["recall"] < 0.6 and 0.4 < m["coverage"] < 0.6


def test_prdc_k_clipped_to_set_size() -> None:
    real = np.array([[0.0], [1.0], [3.0]])
    m = quality.prdc(real, real, k=50)  # k -> 2: radii [3, 2, 3]
    assert m["precision"] == 1.0 and m["recall"] == 1.0 and m["coverage"] == 1.0
    # strict balls: {0, 1}, {0, 1}, {1, 3} -> 6 memberships / 3 fake rows / k=2.
    assert m["density"] == pytest.approx(1.0)



def test_prdc_needs_two_rows() -> None:
    with pytest.raises(ValueError):
        quality.prdc(np.zeros((1, 2)), np.zeros((5, 2)))


# --------------------------------------------------------------------------- nearest_distances


def test_nearest_distances_matches_brute_force() -> None:
    rng = np.random.default_rng(8)
    query = rng.normal(size=(257, 12))
    reference = rng.normal(size=(113, 12))
    expected = cdist(query, reference).min(axis=1)
    np.testing.assert_allclose(quality.nearest_distances(query, reference), expected, rtol=1e-10)


def test_nearest_distances_chunked_matches_brute_force(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quality, "_BLOCK_ELEMENTS", 50)  # forces many small query blocks
    rng = np.random.default_rng(9)
    query = rng.normal(size=(101, 5)).astype(np.float32)
    reference = rng.normal(size=(17, 5)).astype(np.float32)
    expected = cdist(query.astype(np.float64), reference.astype(np.float64)).min(axis=1)
    got = quality.nearest_distances(query, reference)
    assert got.shape == (101,)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_nearest_distances_exact_copies_are_zero() -> None:
    reference = np.random.default_rng(10).uniform(0, 255, size=(50, 64))
    assert np.all(quality.nearest_distances(reference[::-1], reference) == 0.0)


# --------------------------------------------------------------------------- memorisation


def _real_sets() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    return rng.normal(size=(400, 16)), rng.normal(size=(200, 16))


def test_memorisation_exact_copies() -> None:
    train, holdout = _real_sets()
    synthetic = train[:150].copy()
    m = quality.memorisation(synthetic, train, holdout)
    assert m["near_copies"] == len(synthetic) and m["near_copy_rate"] == 1.0
    assert m["syn_to_train_median"] == 0.0 and m["ratio"] == 0.0
    assert m["real_to_train_median"] > 0.0 and m["copy_threshold"] > 0.0
    json.dumps(m)  # plain Python numbers only
    assert type(m["near_copies"]) is int and type(m["ratio"]) is float


def test_memorisation_far_synthetic_has_no_copies() -> None:
    train, holdout = _real_sets()
    synthetic = np.random.default_rng(12).normal(size=(100, 16)) + 100.0
    m = quality.memorisation(synthetic, train, holdout)
    assert m["near_copies"] == 0 and m["near_copy_rate"] == 0.0
    assert m["ratio"] > 1.0


def test_memorisation_threshold_is_holdout_quantile() -> None:
    train, holdout = _real_sets()
    m = quality.memorisation(holdout, train, holdout, copy_quantile=0.5)
    # synthetic == holdout: ratio 1, and strictly-below-median means just under half.
    assert m["ratio"] == pytest.approx(1.0)
    assert m["copy_threshold"] == pytest.approx(m["real_to_train_median"])
    assert m["near_copies"] == 100


def test_minimum_detectable_effect_known_value_and_shrinks_with_seeds() -> None:
    diffs = np.array([0.01, -0.01, 0.02, 0.0, 0.03])
    expected = (sps.t.ppf(0.975, 4) + sps.t.ppf(0.8, 4)) * diffs.std(ddof=1) / math.sqrt(5)
    assert intervals.minimum_detectable_effect(diffs) == pytest.approx(expected)
    more_seeds = np.tile(diffs, 4)
    assert intervals.minimum_detectable_effect(more_seeds) < intervals.minimum_detectable_effect(diffs) / 1.5


def test_minimum_detectable_effect_simulated_power_is_about_80_percent() -> None:
    """A true effect of exactly the MDE is found significant in about 80% of simulated designs."""
    rng = np.random.default_rng(0)
    n, sd = 20, 0.02
    mde = intervals.minimum_detectable_effect(rng.normal(0, sd, n))
    hits = 0
    for _ in range(2000):
        sample = rng.normal(mde, sd, n)
        hits += intervals.paired_gain(sample, np.zeros(n)).lo > 0
    assert 0.6 < hits / 2000 < 0.95


def test_minimum_detectable_effect_undefined_without_spread() -> None:
    assert math.isnan(intervals.minimum_detectable_effect([0.01]))
    assert math.isnan(intervals.minimum_detectable_effect([0.01, 0.01, 0.01]))
