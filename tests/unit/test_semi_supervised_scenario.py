"""The semi-supervised scenario: its draw, its arms' equal budget, its summary."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.evaluation.quality import QUALITY_KEYS
from pipeline.config import EvaluateConfig, parse_params
from pipeline.data.imageset import ImageSet
from pipeline.errors import PipelineError
from pipeline.evaluation import scenarios
from pipeline.evaluation.arms import SEMI_SUPERVISED_ARMS
from pipeline.evaluation.learning_curve import summarize
from pipeline.evaluation.scenarios import semi_supervised
from pipeline.evaluation.selection import effective_budget, plan

NAMES = [arm.name for arm in SEMI_SUPERVISED_ARMS]


def pool(per_class: int = 40) -> ImageSet:
    labels = np.repeat(np.arange(4), per_class)
    return ImageSet(np.zeros((len(labels), 8, 8, 1), np.uint8), labels, tuple("abcd"))


def test_labeled_and_unlabeled_rows_of_a_cell_are_disjoint() -> None:
    cfg = EvaluateConfig(scenario="semi_supervised", unlabeled_per_class=10)
    data = pool()
    for seed in (0, 1):
        cell = scenarios.get("semi_supervised").draw(data, 5, seed, cfg)
        assert np.bincount(data.labels[cell.index]).tolist() == [5] * 4
        assert len(cell.unlabeled) == 40 and not set(cell.index) & set(cell.unlabeled)
        assert set(cell.used) == set(cell.index) | set(cell.unlabeled)
    with pytest.raises(PipelineError, match="evaluate.unlabeled_per_class"):
        semi_supervised.draw(data, 5, 0, EvaluateConfig(scenario="semi_supervised", unlabeled_per_class=30))


def test_every_arm_plans_the_same_budget_and_tunes_its_training() -> None:
    params = parse_params({"evaluate": {"scenario": "semi_supervised"}})
    arms = scenarios.get("semi_supervised").arms(params.evaluate)
    assert [arm.name for arm in arms] == NAMES
    budget = effective_budget(arms, params)
    plans = [plan(arm, params, budget, 0, i) for i, arm in enumerate(arms)]
    assert {len(p) for p in plans} == {params.evaluate.budget}
    assert all({"steps", "lr", "classic_copies"} <= set(p[0]) for p in plans)
    assert "pseudo_threshold" in plans[1][0] and "pseudo_rounds" in plans[1][0]


def test_semi_supervised_excludes_label_noise_and_cleaning() -> None:
    with pytest.raises(PipelineError, match="balanced scenario only"):
        parse_params({"evaluate": {"scenario": "semi_supervised", "clean": "drop"}})


def fake_cell(seed: int, best_fix: str) -> dict:
    accs = {"real_classic": 0.70, "pseudo_label": 0.74, "vae_pseudo": 0.78, "ssl_vae": 0.72, "ssl_vae_pseudo": 0.77}
    jitter = 0.01 * seed
    scores = {arm: {"acc": acc + jitter, "f1": acc + jitter, "per_class": [acc] * 4} for arm, acc in accs.items()}
    return {
        "size": 5, "seed": seed, "scores": scores, "unlabeled_count": 40,
        "selection": {arm: {"val_fits": 6} for arm in accs},
        "best_by_val": {"non_generative": best_fix, "generative": "vae_pseudo"},
        "reference": {"vae_classifier": {"acc": 0.6, "f1": 0.6, "per_class": [0.6] * 4}},
        "quality": dict.fromkeys(QUALITY_KEYS, 0.5),
    }


def test_gains_are_over_real_classic_and_over_the_fix_chosen_on_val_per_seed() -> None:
    # seed 0 chose real_classic on val, seeds 1-2 pseudo_label: the "best fix" follows val, not test means
    cells = [fake_cell(0, "real_classic"), fake_cell(1, "pseudo_label"), fake_cell(2, "pseudo_label")]
    block = summarize(cells, [{"acc": 0.9, "f1": 0.9}] * 3, [5], SEMI_SUPERVISED_ARMS)["n5"]
    assert block["vae_pseudo"]["gain_mean"] == pytest.approx(0.08)
    assert block["vae_pseudo"]["gain_vs_best_mean"] == pytest.approx(0.08 - 0.04 * 2 / 3)
    assert block["best_non_generative"]["acc_mean"] == pytest.approx(np.mean([0.70, 0.75, 0.76]))
    assert block["vae_pseudo"]["gap_closed"] == pytest.approx(0.08 / (0.9 - 0.71))
    assert "mde" in block["ssl_vae"] and block["ssl_vae"]["val_fits"] == 6
    assert block["vae_classifier"]["acc_mean"] == pytest.approx(0.6) and "val_fits" not in block["vae_classifier"]
    assert "gain_mean" not in block["real_classic"]
