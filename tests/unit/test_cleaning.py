"""Label noise and the `real_cleaned` arm: seeded flips, equal budget, test only scored, the
summary and the report section, and one-line errors for bad params."""

import numpy as np
import pytest

from pipeline.audit.crossfit import OutOfFold
from pipeline.config import Params, parse_params
from pipeline.data.imageset import ImageSet
from pipeline.errors import PipelineError
from pipeline.evaluation import cell as protocol
from pipeline.evaluation import cleaning
from pipeline.evaluation.arms import ARMS, arms_for
from pipeline.evaluation.cell import Splits
from pipeline.evaluation.cleaning_summary import summarize_size
from pipeline.reporting import cleaning_section
from tests.unit.conftest import TINY
from tests.unit.test_cell import bright_set, noise_set


def with_evaluate(**update) -> Params:
    return parse_params({**TINY, "evaluate": {**TINY["evaluate"], **update}})


def test_flips_are_seeded_per_cell_and_the_share_is_right() -> None:
    real = bright_set(10, 0)  # 30 images
    noisy = cleaning.add_label_noise(real, 0.2, seed=3, size=10)
    assert noisy.flipped.sum() == 6
    assert np.all(noisy.data.labels[noisy.flipped] != real.labels[noisy.flipped])
    assert np.array_equal(noisy.data.labels[~noisy.flipped], real.labels[~noisy.flipped])
    assert np.array_equal(noisy.true_labels, real.labels) and np.array_equal(noisy.data.images, real.images)
    again = cleaning.add_label_noise(real, 0.2, seed=3, size=10)
    assert np.array_equal(again.data.labels, noisy.data.labels)
    others = [cleaning.add_label_noise(real, 0.2, seed=s, size=z).flipped for s, z in ((4, 10), (3, 5))]
    assert all(not np.array_equal(o, noisy.flipped) for o in others)
    assert cleaning.add_label_noise(real, 0.0, seed=3, size=10).data is real


def test_the_defaults_add_no_arm_and_no_record() -> None:
    params = parse_params(TINY)
    assert arms_for("balanced") == ARMS == arms_for("balanced", params.evaluate.clean, params.evaluate.label_noise)
    assert cleaning.extra_rows(cleaning.add_label_noise(bright_set(3, 0), 0.0, 0, 3), params, 0) == ({}, None)
    names = [arm.name for arm in arms_for("balanced", "drop", 0.1)]
    assert names[: len(ARMS)] == [arm.name for arm in ARMS] and names[len(ARMS):] == ["real_cleaned", "real_true_labels"]


def known_bounds(monkeypatch: pytest.MonkeyPatch, real: ImageSet, suspects: dict[int, int]) -> None:
    """The audit's out-of-fold bounds: each image fits its own label, except `suspects` {row: likelier label}."""
    bounds = np.full((len(real), real.num_classes), -100.0)
    bounds[np.arange(len(real)), real.labels] = -10.0
    for row, label in suspects.items():
        bounds[row, label] = 100.0  # as sure of the other label as of every image's own
    monkeypatch.setattr(cleaning, "out_of_fold_bounds", lambda *args, **kwargs: OutOfFold(bounds, np.arange(len(real)) % 5))


@pytest.mark.parametrize("action", ["drop", "relabel"])
def test_relabel_changes_labels_not_images_and_drop_removes_rows(action: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real = bright_set(5, 0)
    noisy = cleaning.add_label_noise(real, 0.2, seed=0, size=5)
    flipped = np.flatnonzero(noisy.flipped)
    clean_row = int(np.flatnonzero(~noisy.flipped)[0])
    other = (int(noisy.data.labels[clean_row]) + 1) % real.num_classes
    suspects = {int(flipped[0]): int(real.labels[flipped[0]]), clean_row: other}  # one true hit, one false alarm
    known_bounds(monkeypatch, noisy.data, suspects)
    params = with_evaluate(label_noise=0.2, clean=action)
    params = params.model_copy(update={"audit": params.audit.model_copy(update={"false_flag_share": 0.2})})  # 15 images: 1% flags none
    cleaned, record = cleaning.clean(noisy, params, seed=0)
    assert record == {"flagged": 2, "flagged_flipped": 1, "suggested_true": 1}
    if action == "drop":
        kept = np.setdiff1d(np.arange(len(real)), list(suspects))
        assert np.array_equal(cleaned.images, real.images[kept]) and np.array_equal(cleaned.labels, noisy.data.labels[kept])
    else:
        assert np.array_equal(cleaned.images, real.images)
        expected = noisy.data.labels.copy()
        expected[list(suspects)] = list(suspects.values())
        assert np.array_equal(cleaned.labels, expected)


def test_every_arm_gets_the_same_val_fits_and_test_is_only_scored(monkeypatch: pytest.MonkeyPatch, one_thread) -> None:
    params = with_evaluate(label_noise=0.2, clean="relabel")
    built: list[dict[str, ImageSet]] = []
    real_source = protocol.RowSource

    def recording_source(*args, **kwargs):
        built.append(args[5])
        return real_source(*args, **kwargs)

    monkeypatch.setattr(protocol, "RowSource", recording_source)
    pool, val = noise_set(10, 0), noise_set(4, 1)
    cells = [protocol.run_cell(Splits(pool, val, test), size=5, seed=0, params=params) for test in (noise_set(4, 2), bright_set(4, 3))]
    names = [arm.name for arm in arms_for("balanced", "relabel", 0.2)]
    for cell in cells:
        assert list(cell["scores"]) == names
        assert {cell["selection"][name]["val_fits"] for name in names} == {params.evaluate.budget}
        assert cell["cleaning"]["flipped"] == 3 and cell["cleaning"]["images"] == 15
    # another test split changes the scores, never the cleaned or the true-label rows
    for kind in ("cleaned", "true"):
        first, second = (b[kind] for b in built)
        assert np.array_equal(first.images, second.images) and np.array_equal(first.labels, second.labels)
    assert cells[0]["cleaning"] == cells[1]["cleaning"]


def test_the_summary_counts_the_cost_and_the_recovered_share() -> None:
    records = [{"images": 100, "flipped": 10, "flagged": 8, "flagged_flipped": 6, "suggested_true": 5}] * 2
    acc = {"real": [0.80, 0.70], "real_cleaned": [0.84, 0.74], "real_true_labels": [0.90, 0.78]}
    out = summarize_size(records, acc)
    assert out["flagged_mean"] == 8 and out["precision"] == 0.75 and out["recall"] == 0.6
    assert out["cost_mean"] == pytest.approx(0.09) and out["recovered_share"] == pytest.approx(0.04 / 0.09)
    assert out["cost_lo"] < out["cost_mean"] < out["cost_hi"]
    metrics = {"n10": {
        "real": {"acc_mean": 0.75, "acc_lo": 0.7, "acc_hi": 0.8},
        "real_cleaned": {"acc_mean": 0.79, "acc_lo": 0.7, "acc_hi": 0.85, "gain_mean": 0.04, "gain_lo": 0.04, "gain_hi": 0.04, "mde": float("nan")},
        "real_true_labels": {"acc_mean": 0.84, "acc_lo": 0.8, "acc_hi": 0.9, "gain_mean": 0.09, "gain_lo": 0.05, "gain_hi": 0.13, "mde": 0.1},
        "cleaning": out,
    }}
    section = cleaning_section.context(with_evaluate(train_sizes=[10], label_noise=0.1, clean="drop"), metrics, 10)
    assert "recovered 44% of it" in section["answer"] and "75% of the flagged images" in section["flags"]
    assert "true labels (oracle)" in section["tables"][0][1]
    assert cleaning_section.context(parse_params(TINY), metrics, 10) is None


@pytest.mark.parametrize(("update", "param"), [
    ({"label_noise": 0.6}, "evaluate.label_noise"),
    ({"label_noise": -0.1}, "evaluate.label_noise"),
    ({"clean": "fix"}, "evaluate.clean"),
    ({"clean": "drop", "scenario": "imbalanced"}, "clean"),
    ({"label_noise": 0.1, "scenario": "imbalanced"}, "clean"),
])
def test_bad_params_fail_with_one_line_naming_the_param(update: dict, param: str) -> None:
    with pytest.raises(PipelineError) as err:
        with_evaluate(**update)
    assert param in str(err.value) and "\n" not in str(err.value)


def test_a_bare_yaml_off_means_off() -> None:
    assert with_evaluate(clean=False).evaluate.clean == "off"
