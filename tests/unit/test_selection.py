"""The `auto` search: which settings it tries, which it keeps, and what it records."""

import pytest

from pipeline.config import parse_params
from pipeline.evaluation.selection import AUTO, CANDIDATES, describe, generation_config, requested, search

ALL_AUTO = dict.fromkeys(CANDIDATES, AUTO)


def test_each_auto_knob_moves_to_its_best_value_and_ties_keep_the_start() -> None:
    def val_accuracy(setting: dict) -> float:
        # posterior is better; temperature does not matter (a tie); a small ratio is better
        return 0.5 + 0.1 * (setting["strategy"] == "posterior") + 0.05 * (setting["ratio"] == 1.0)

    selection = search(ALL_AUTO, val_accuracy)
    assert selection.chosen == {"strategy": "posterior", "temperature": 1.0, "ratio": 1.0, "min_confidence": 0.0, "synthetic_weight": 1.0}
    assert selection.val_acc == pytest.approx(0.65)
    assert selection.val_acc == max(step["val_acc"] for step in selection.trace)
    # start + 2 strategies + 2 temperatures + 2 ratios + 1 filter + 1 weight
    assert len(selection.trace) == 9
    assert selection.trace[0]["knob"] == "start"


def test_pinned_knobs_are_never_searched() -> None:
    tried: list[dict] = []

    def val_accuracy(setting: dict) -> float:
        tried.append(setting)
        return 0.5

    request = {**ALL_AUTO, "strategy": "prior", "synthetic_weight": 0.5}
    selection = search(request, val_accuracy)
    assert {s["strategy"] for s in tried} == {"prior"} and {s["synthetic_weight"] for s in tried} == {0.5}
    assert selection.chosen["strategy"] == "prior" and selection.chosen["synthetic_weight"] == 0.5


def test_nothing_auto_means_one_evaluation() -> None:
    fixed = {"strategy": "prior", "temperature": 1.0, "ratio": None, "min_confidence": 0.0, "synthetic_weight": 1.0}
    calls: list[dict] = []
    selection = search(fixed, lambda s: calls.append(s) or 0.7)
    assert calls == [fixed] and selection.chosen == fixed


def test_temperature_is_not_searched_for_interpolation() -> None:
    selection = search(ALL_AUTO, lambda s: 0.9 if s["strategy"] == "interpolate" else 0.5)
    assert selection.chosen["strategy"] == "interpolate"
    assert not [step for step in selection.trace if step["knob"] == "temperature"]


def test_params_default_to_auto_and_a_chosen_setting_resolves_them() -> None:
    params = parse_params({})
    request = requested(params.generate, params.evaluate)
    assert request == ALL_AUTO and not params.generate.is_resolved()
    chosen = search(request, lambda s: 0.5).chosen
    resolved = generation_config(params.generate, chosen)
    assert resolved.is_resolved() and resolved.ratio == chosen["ratio"]
    assert describe(chosen) == "prior T=1, 10x, w=1"


def test_auto_and_numbers_are_accepted_and_other_words_are_not() -> None:
    from pipeline.errors import PipelineError

    assert parse_params({"generate": {"temperature": 0.7}, "evaluate": {"synthetic_weight": 0.3}}).evaluate.synthetic_weight == 0.3
    with pytest.raises(PipelineError, match="generate.temperature"):
        parse_params({"generate": {"temperature": "cold"}})


def test_a_setting_without_samples_is_never_chosen() -> None:
    selection = search(ALL_AUTO, lambda s: None if s["min_confidence"] else 0.5)
    assert selection.chosen["min_confidence"] == 0.0
    assert [step["val_acc"] for step in selection.trace if step["knob"] == "min_confidence"] == [None]


def test_no_usable_setting_is_one_clear_error() -> None:
    from pipeline.errors import PipelineError

    with pytest.raises(PipelineError, match="generate.min_confidence"):
        search({**ALL_AUTO, "min_confidence": 0.99}, lambda s: None)
