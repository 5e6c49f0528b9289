"""Tuning on val: which settings each arm tries, the equal budget, and which one it keeps."""

import numpy as np
import pytest

from pipeline.config import parse_params
from pipeline.errors import PipelineError
from pipeline.evaluation.arms import ARMS, BY_NAME, SEMI_SUPERVISED_ARMS
from pipeline.evaluation.selection import (
    AUTO,
    BACK_OFF_WEIGHT,
    arm_grid,
    choose,
    describe,
    effective_budget,
    generation_config,
    knob_values,
    plan,
    survivors,
)


def test_every_arm_gets_the_same_budget_and_starts_from_params() -> None:
    params = parse_params({"evaluate": {"budget": 5}})
    budget = effective_budget(ARMS, params)
    assert budget == 5
    for i, arm in enumerate(ARMS):
        settings = plan(arm, params, budget, seed=3, arm_index=i)
        assert len(settings) == budget, arm.name
        assert settings[0] == arm_grid(arm, params)[0], "the start point comes first"
        assert settings[0]["steps"] == params.evaluate.steps and settings[0]["lr"] == params.evaluate.lr
        assert len({tuple(sorted(s.items())) for s in settings}) == budget, "no setting twice"


def test_large_images_start_the_vae_arms_near_their_own_class_images() -> None:
    """From 16 px the strategy search starts at `posterior` (and backs off from it); smaller images
    start at `prior`; a strategy pinned in params is never reordered."""
    params = parse_params({})
    arm = BY_NAME["real_vae"]
    small, large = (plan(arm, params, 6, seed=0, arm_index=2, large_images=flag) for flag in (False, True))
    assert [s["strategy"] for s in small[:2]] == ["prior", "prior"]
    assert [s["strategy"] for s in large[:2]] == ["posterior", "posterior"]  # the start point and its back-off
    assert sorted(knob_values(params, large_images=True)["strategy"]) == sorted(knob_values(params)["strategy"])
    assert len(arm_grid(arm, params, large_images=True)) == len(arm_grid(arm, params))  # the same grid, reordered
    pinned = parse_params({"generate": {"strategy": "borrow"}})
    assert knob_values(pinned, large_images=True)["strategy"] == ("borrow",)
    real = BY_NAME["real"]
    assert plan(real, params, 6, seed=0, arm_index=0, large_images=True) == plan(real, params, 6, seed=0, arm_index=0)


def test_the_budget_is_capped_by_the_smallest_grid_for_every_arm_alike() -> None:
    params = parse_params({"evaluate": {"budget": 1000}})
    smallest = min(len(arm_grid(arm, params)) for arm in ARMS)
    assert effective_budget(ARMS, params) == smallest == len(arm_grid(BY_NAME["real"], params))


def test_the_draw_depends_on_the_seed_and_is_repeatable() -> None:
    params = parse_params({})
    arm = BY_NAME["real_vae"]
    first = plan(arm, params, 6, seed=0, arm_index=2)
    assert plan(arm, params, 6, seed=0, arm_index=2) == first
    assert plan(arm, params, 6, seed=1, arm_index=2) != first


@pytest.mark.parametrize("scenario", ["balanced", "semi_supervised"])
def test_every_sample_adding_arm_tries_its_back_off_second_and_the_others_draw_as_before(scenario: str) -> None:
    """A harmful generator must cost little after selection: the fewest samples at a weight below
    every candidate is always among an adding arm's tries; arms without samples keep their draw."""
    params = parse_params({"evaluate": {"scenario": scenario}})
    arms = [arm for arm in (*ARMS, *SEMI_SUPERVISED_ARMS) if "synthetic_weight" in arm.knobs or "ratio" in arm.knobs]
    assert arms
    for i, arm in enumerate(arms):
        settings = plan(arm, params, 6, seed=4, arm_index=i)
        start, second = settings[:2]
        lighter = {"ratio": min(knob_values(params)["ratio"]), "synthetic_weight": BACK_OFF_WEIGHT}
        assert second == {**start, **{k: v for k, v in lighter.items() if k in arm.knobs}}
        assert BACK_OFF_WEIGHT < min(knob_values(params)["synthetic_weight"])
        assert settings.count(second) == 1
    real = BY_NAME["real_classic"]
    grid = arm_grid(real, params)
    drawn = np.random.default_rng([4, 1]).permutation(len(grid) - 1)[:5] + 1
    assert plan(real, params, 6, seed=4, arm_index=1) == [grid[0], *(grid[i] for i in drawn)]


def test_a_pinned_synthetic_weight_stays_in_the_back_off() -> None:
    params = parse_params({"evaluate": {"synthetic_weight": 0.5}})
    start, second = plan(BY_NAME["real_vae"], params, 6, seed=0, arm_index=2)[:2]
    assert second == {**start, "ratio": min(knob_values(params)["ratio"])} and second["synthetic_weight"] == 0.5


def test_without_a_ratio_the_back_off_lowers_the_weight_alone() -> None:
    """`generate.ratio: null` means `per_class` samples: the back-off keeps that amount."""
    params = parse_params({"generate": {"ratio": None}})
    start, second = plan(BY_NAME["real_vae"], params, 6, seed=0, arm_index=2)[:2]
    assert start["ratio"] is None and second == {**start, "synthetic_weight": BACK_OFF_WEIGHT}


def test_pinned_knobs_are_never_varied() -> None:
    params = parse_params({"generate": {"strategy": "posterior", "temperature": 0.5}, "evaluate": {"synthetic_weight": 0.3}})
    values = knob_values(params)
    assert values["strategy"] == ("posterior",) and values["temperature"] == (0.5,) and values["synthetic_weight"] == (0.3,)
    for setting in arm_grid(BY_NAME["real_vae"], params):
        assert setting["strategy"] == "posterior" and setting["synthetic_weight"] == 0.3


def test_interpolation_ignores_temperature_so_it_is_tried_once() -> None:
    grid = arm_grid(BY_NAME["synthetic_only"], parse_params({}))
    interpolating = [s for s in grid if s["strategy"] == "interpolate"]
    assert interpolating and all(s["temperature"] is None for s in interpolating)
    assert len({tuple(sorted(s.items())) for s in grid}) == len(grid)


def test_the_best_wins_only_by_more_than_one_val_image() -> None:
    """Choices must not flip on last-bit float noise, which can move one val prediction."""
    settings = [{"steps": 200}, {"steps": 100}, {"steps": 50}]
    n = 360
    assert choose(settings, [300 / n, 301 / n, 299 / n], n).chosen == {"steps": 200}
    assert choose(settings, [300 / n, 302 / n, 301 / n], n).chosen == {"steps": 100}
    tied = choose(settings, [0.5, 0.5, 0.5], n)
    assert tied.chosen == {"steps": 200} and tied.val_fits == 3


def test_a_setting_without_samples_is_never_chosen_and_none_usable_is_one_error() -> None:
    settings = [{"min_confidence": 0.9}, {"min_confidence": 0.0}]
    assert choose(settings, [None, 0.4], 100).chosen == {"min_confidence": 0.0}
    with pytest.raises(PipelineError, match="generate.min_confidence"):
        choose(settings, [None, None], 100)


def test_params_default_to_auto_and_a_chosen_setting_resolves_them() -> None:
    params = parse_params({})
    assert params.generate.strategy == AUTO and not params.generate.is_resolved()
    chosen = plan(BY_NAME["real_vae"], params, 6, seed=0, arm_index=2)[0]
    resolved = generation_config(params.generate, chosen)
    assert resolved.is_resolved() and resolved.ratio == chosen["ratio"]
    assert describe(chosen) == "200 steps, lr 0.005, prior T=1, 10x, w=1"


def test_auto_and_numbers_are_accepted_and_other_words_are_not() -> None:
    assert parse_params({"generate": {"temperature": 0.7}, "evaluate": {"synthetic_weight": 0.3}}).evaluate.synthetic_weight == 0.3
    with pytest.raises(PipelineError, match="generate.temperature"):
        parse_params({"generate": {"temperature": "cold"}})


def test_halving_keeps_the_better_half_and_whatever_is_within_one_val_image_of_it() -> None:
    # 100 val images: one image is 0.01
    assert survivors([0.50, 0.90, 0.70, 0.60], 100) == [False, True, True, False]
    assert survivors([0.80, 0.90, 0.795, 0.60], 100) == [True, True, True, False], "0.795 is half an image from the cut"
    assert survivors([0.70, 0.90, 0.80], 100) == [False, True, True], "odd counts keep the larger half"
    assert survivors([0.42], 100) == [True] and survivors([], 100) == []


def test_a_stopped_setting_is_tried_and_unscored_and_never_chosen() -> None:
    settings = [{"steps": 200}, {"steps": 100}, {"steps": 200, "lr": 0.002}]
    picked = choose(settings, [0.9, 0.8, None], 100, stopped_at={2: 50})
    assert picked.chosen == settings[0] and picked.val_fits == 3
    assert picked.trace[2] == {"setting": settings[2], "val_acc": None, "stopped_at": 50}
    assert "stopped_at" not in picked.trace[0]
