"""Known answers for the synthetic-data suite (detection AUROC, α-precision, β-recall,
authenticity, identifiability) on Gaussian feature vectors, and for the quality-vs-gain study."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from pipeline.evaluation import quality_gain, quality_suite
from pipeline.evaluation.quality import QUALITY_KEYS

DIM, CLASSES = 16, 4


def gaussian_classes(n_per_class: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Rows of `CLASSES` Gaussian classes with fixed means (the same data source for every call)."""
    means = np.random.default_rng(123).normal(0.0, 3.0, (CLASSES, DIM))
    labels = np.repeat(np.arange(CLASSES), n_per_class)
    return means[labels] + rng.normal(size=(len(labels), DIM)), labels


@pytest.fixture(scope="module")
def sets() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A training set, a held-out real set and a fresh real set, all drawn from the same source."""
    rng = np.random.default_rng(0)
    return {"train": gaussian_classes(60, rng), "holdout": gaussian_classes(100, rng), "fresh": gaussian_classes(100, rng)}


def suite_of(fake: tuple[np.ndarray, np.ndarray], sets: dict, **kw) -> dict:
    return quality_suite.suite(*fake, *sets["train"], *sets["holdout"], **kw)


def test_fresh_real_rows_are_indistinguishable_and_on_the_ideal_curves(sets: dict) -> None:
    out = suite_of(sets["fresh"], sets)
    assert out["detection_auroc"] == pytest.approx(0.5, abs=0.07)
    hold, fresh = sets["holdout"][0], sets["fresh"][0]
    # the curves themselves lie near the diagonal (α-precision(α) = α, β-recall(β) ~ β)
    assert np.max(np.abs(quality_suite.alpha_precision_curve(hold, fresh) - quality_suite.ALPHAS)) < 0.1
    assert np.max(np.abs(quality_suite.beta_recall_curve(hold, fresh) - quality_suite.ALPHAS)) < 0.15
    assert out["alpha_precision"] > 0.9 and out["beta_recall"] > 0.85


def test_authenticity_of_fresh_rows_is_that_of_real_rows_against_each_other(sets: dict) -> None:
    """A fresh row is "not authentic" exactly when it and its nearest training row are mutual
    nearest neighbours, so the known answer is 1 minus the share of training rows whose nearest
    neighbour has them as nearest neighbour too (a fresh row and the training rows are
    exchangeable draws of one source)."""
    train = sets["train"][0]
    d = cdist(train, train)
    np.fill_diagonal(d, np.inf)
    nearest = d.argmin(axis=1)
    expected = 1.0 - np.mean(nearest[nearest] == np.arange(len(train)))
    out = suite_of(sets["fresh"], sets)
    assert out["authenticity"] == pytest.approx(expected, abs=0.08)
    assert out["identifiability"] < 0.05  # about 1 / (held-out rows of a class + 1)


def test_copies_of_training_rows_are_not_authentic_and_all_identifiable(sets: dict) -> None:
    train, labels = sets["train"]
    out = suite_of((np.repeat(train, 2, axis=0), np.repeat(labels, 2)), sets)
    assert out["authenticity"] == 0.0
    assert out["identifiability"] == 1.0
    assert all(v == 1.0 for v in out["per_class"]["identifiability"])


def test_pure_noise_is_detected_and_has_no_precision(sets: dict) -> None:
    rng = np.random.default_rng(1)
    hold = sets["holdout"][0]
    noise = rng.normal(hold.mean(axis=0), 5.0 * hold.std(), size=hold.shape)  # spread far wider than the data
    out = suite_of((noise, sets["fresh"][1]), sets)
    assert out["detection_auroc"] > 0.95
    assert out["alpha_precision"] < 0.05 and out["beta_recall"] < 0.05


def test_detection_finds_a_shift_in_spread_alone() -> None:
    """Same mean, wider spread: a linear score on the features alone would miss it."""
    rng = np.random.default_rng(2)
    real, wide = rng.normal(size=(300, DIM)), rng.normal(scale=1.5, size=(300, DIM))
    assert quality_suite.detection_auroc(real, wide) > 0.9
    assert quality_suite.detection_auroc(real, wide, seed=3) == quality_suite.detection_auroc(real, wide, seed=3)


def test_per_class_values_and_undefined_cases(sets: dict) -> None:
    fake, labels = sets["fresh"]
    keep = labels != 2  # no samples of class 2
    out = suite_of((fake[keep], labels[keep]), sets)
    assert set(out["per_class"]) == set(quality_suite.SUITE_KEYS)
    assert all(len(v) == CLASSES for v in out["per_class"].values())
    assert all(math.isnan(out["per_class"][k][2]) for k in quality_suite.SUITE_KEYS)
    assert math.isnan(quality_suite.detection_auroc(fake[:1], fake[1:5]))
    assert "per_class" not in suite_of(sets["fresh"], sets, per_class=False)


# --------------------------------------------------------------------------- quality vs val gain


def trace(entries: list[tuple[dict, float | None]]) -> dict:
    return {"trace": [{"setting": s, "val_acc": v} for s, v in entries], "val_acc": max(v for _, v in entries if v is not None)}


def test_tries_get_their_gain_over_the_extended_arm_and_one_measure_per_setting() -> None:
    prior = {"strategy": "prior", "temperature": 1.0, "ratio": 10.0, "min_confidence": 0.0, "steps": 50, "lr": 0.005}
    borrow = {**prior, "strategy": "borrow"}
    selections = {
        "real": trace([({"steps": 50, "lr": 0.005}, 0.70)]),
        "real_vae": trace([(prior, 0.72), ({**prior, "steps": 100}, None), ({**borrow, "ratio": 3.0}, 0.68), ({**prior, "lr": 0.002}, 0.71)]),
        "synthetic_only": trace([(prior, 0.5)]),  # extends no arm: no gain to measure
    }
    calls = []

    def measure(setting: dict) -> dict:
        calls.append(setting)
        return dict.fromkeys(QUALITY_KEYS, 1.0 if setting["strategy"] == "prior" else 0.0)

    points = quality_gain.tries_points(selections, measure, {"ratio": None})
    assert [(p["arm"], p["try"]) for p in points] == [("real_vae", 0), ("real_vae", 2), ("real_vae", 3)]  # the stopped try has no val score
    assert [p["gain"] for p in points] == pytest.approx([0.02, -0.02, 0.01])
    assert len(calls) == 2 and all(c["ratio"] is None and "steps" not in c for c in calls)  # sampling knobs only, fixed amount


def test_spearman_over_cells_finds_the_metric_that_tracks_the_gain() -> None:
    rng = np.random.default_rng(0)
    cells = []
    for _ in range(12):
        gains = rng.normal(size=8)
        tries = [{"gain": g, "quality": {"fd": -g + 0.3 * rng.normal(), "recall": rng.normal(), "precision": 0.5}} for g in gains]
        cells.append({"quality_tries": tries})
    out = quality_gain.summarize(cells, metrics=("fd", "recall", "precision"))
    fd, recall = out["fd"], out["recall"]
    assert fd["spearman_mean"] < -0.7 and fd["spearman_lo"] <= fd["spearman_mean"] <= fd["spearman_hi"] < 0
    assert recall["spearman_lo"] < 0 < recall["spearman_hi"]
    assert out["precision"]["cells"] == 0 and math.isnan(out["precision"]["spearman_mean"])  # a constant metric: undefined
    assert quality_gain.summarize([{"size": 5}]) == {}


def test_auroc_matches_the_pairwise_definition() -> None:
    rng = np.random.default_rng(4)
    y = np.r_[np.zeros(30), np.ones(20)]
    score = np.round(rng.normal(size=50) + y, 1)  # rounded: ties count one half
    pairs = [(s1 > s0) + 0.5 * (s1 == s0) for s1 in score[y == 1] for s0 in score[y == 0]]
    assert quality_suite.auroc(y, score) == pytest.approx(np.mean(pairs))
