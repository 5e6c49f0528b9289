"""The imbalanced scenario's protocol: which classes are rare, how many rows each arm adds, the
equal tuning budget, logit adjustment in training only, and `test` only scored."""

import numpy as np
import pytest
import torch

from pipeline.config import Params, parse_params
from pipeline.data.imageset import ImageSet
from pipeline.data.splits import draw_rare_classes, imbalanced_subset
from pipeline.errors import PipelineError
from pipeline.evaluation import cell as protocol
from pipeline.evaluation.arms import BY_NAME, IMBALANCED_ARMS, arms_for
from pipeline.evaluation.cell import Splits, chosen_rows
from pipeline.evaluation.imbalance import Rare, class_weights, logit_offset
from pipeline.evaluation.learning_curve import QUALITY_KEYS, per_class_means, summarize
from pipeline.evaluation.selection import IMBALANCE_CANDIDATES
from pipeline.evaluation.tuning import RowSource
from pipeline.models.batched import FitJob, fit_many
from pipeline.reporting import tables
from pipeline.reporting.verdict import imbalanced_answer, imbalanced_headline

NAMES = [arm.name for arm in IMBALANCED_ARMS]
ADDING = [arm for arm in IMBALANCED_ARMS if arm.rare_only]


pytestmark = pytest.mark.usefixtures("one_thread")


def bright_set(n_per_class: int, seed: int, classes: int = 3) -> ImageSet:
    """Class k lights up row band k: unique rows, learnable by a tiny CNN."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), n_per_class)
    images = rng.integers(0, 60, (len(labels), 8, 8, 1)).astype(np.uint8)
    for i, k in enumerate(labels):
        images[i, 2 * k : 2 * k + 2] = rng.integers(180, 256, (2, 8, 1))
    return ImageSet(images, labels, tuple("abcd"[:classes]))


def imbalanced(params: Params, **update) -> Params:
    evaluate = params.evaluate.model_copy(update={"scenario": "imbalanced", "rare_classes": 1, "common_per_class": 8, **update})
    return params.model_copy(update={"evaluate": evaluate})


def test_rare_classes_change_with_the_seed_and_repeat_for_one_seed() -> None:
    names = tuple(str(i) for i in range(10))
    draws = {seed: draw_rare_classes(10, 3, seed, names) for seed in range(10)}
    assert len(set(draws.values())) > 5, "the rare classes should vary with the seed"
    assert all(len(set(d)) == 3 and all(0 <= c < 10 for c in d) for d in draws.values())
    assert draw_rare_classes(10, 3, 4, names) == draws[4]


def test_every_class_but_one_rare_is_one_error_naming_the_param() -> None:
    with pytest.raises(PipelineError, match="evaluate.rare_classes"):
        draw_rare_classes(3, 3, 0, ("a", "b", "c"))


def test_per_class_counts_are_the_size_for_rare_classes_and_common_for_the_rest() -> None:
    labels = np.repeat(np.arange(4), [30, 30, 30, 6])  # class 3 has fewer images than common_per_class
    chosen = imbalanced_subset(labels, 5, 20, (1,), seed=0, class_names=("a", "b", "c", "d"))
    assert np.bincount(labels[chosen], minlength=4).tolist() == [20, 5, 20, 6]  # capped at what the pool has
    assert len(set(chosen)) == len(chosen)
    with pytest.raises(PipelineError, match="evaluate.train_sizes"):
        imbalanced_subset(labels, 7, 20, (1,), seed=0, class_names=("a", "b", "c", "d"))


def test_a_cell_draws_its_rare_classes_from_its_seed_and_the_gap_to_the_common_count() -> None:
    pool = bright_set(20, 0, classes=4)
    cfg = parse_params({"evaluate": {"scenario": "imbalanced", "rare_classes": 2, "common_per_class": 12}}).evaluate
    rare_sets = set()
    for seed in range(6):
        chosen, rare = chosen_rows(pool, 3, seed, cfg)
        counts = np.bincount(pool.labels[chosen], minlength=4)
        assert sorted(counts[list(rare.classes)]) == [3, 3] and sorted(np.delete(counts, rare.classes)) == [12, 12]
        assert rare.gap == 9
        rare_sets.add(rare.classes)
    assert len(rare_sets) > 1


def test_the_scenario_params_fail_with_one_line_naming_the_param() -> None:
    with pytest.raises(PipelineError, match="train_sizes"):
        parse_params({"evaluate": {"scenario": "imbalanced", "train_sizes": [50], "common_per_class": 50}})
    with pytest.raises(PipelineError, match="classifier"):
        parse_params({"evaluate": {"scenario": "imbalanced", "classifier": "logreg"}})
    with pytest.raises(PipelineError, match="evaluate.scenario"):
        parse_params({"evaluate": {"scenario": "skewed"}})
    assert arms_for("balanced") != arms_for("imbalanced") == IMBALANCED_ARMS


class FakeSamples:
    """Stands in for a SampleCache: `per_class` distinct samples of every class."""

    def __init__(self, per_class: int, classes: int = 3) -> None:
        self.data = bright_set(per_class, 99, classes)

    def __call__(self, setting: dict) -> ImageSet:
        return self.data


@pytest.mark.parametrize("fill", IMBALANCE_CANDIDATES["rare_fill"])
def test_every_adding_arm_adds_the_same_rare_rows_for_one_fill(fill: float) -> None:
    real = bright_set(8, 0).subset(np.r_[0:8, 8:11, 16:24])  # class b is rare: 3 images, the others 8
    rare = Rare((1,), gap=5)
    source = RowSource(real, FakeSamples(20), max_copies=1, seed=0, rare=rare)
    added = rare.added_per_class(fill)
    setting = {"steps": 3, "lr": 0.005, "rare_fill": fill, "synthetic_weight": 0.5, "strategy": "prior", "temperature": 1.0, "min_confidence": 0.0}
    for arm in ADDING:
        rows = source.rows(arm, {k: v for k, v in setting.items() if k in arm.knobs})
        counts = rows.data.class_counts()
        assert counts.tolist() == [8, 3 + added, 8], arm.name
        if arm.name == "classic_vae_rare":  # half classic copies (weight 1), half VAE samples (weight 0.5)
            assert (rows.weights == 0.5).sum() == added - added // 2 and (rows.weights == 1).sum() == len(real) + added // 2
        assert np.array_equal(rows.data.images[: len(real)], real.images), "the real rows come first, unchanged"


def test_too_few_samples_make_the_setting_unusable_rather_than_smaller() -> None:
    real = bright_set(8, 0).subset(np.r_[0:8, 8:11, 16:24])
    source = RowSource(real, FakeSamples(2), max_copies=1, seed=0, rare=Rare((1,), gap=5))
    setting = {"steps": 3, "lr": 0.005, "rare_fill": 1.0, "synthetic_weight": 1.0, "strategy": "prior", "temperature": 1.0, "min_confidence": 0.0}
    assert source.rows(BY_NAME["vae_rare"], setting) is None


def test_weights_balance_the_classes_and_the_offset_is_the_log_prior() -> None:
    labels = np.array([0] * 8 + [1] * 2)
    weights = class_weights(labels, 2, power=1.0)
    assert weights[labels == 0].sum() == pytest.approx(weights[labels == 1].sum())
    assert np.all(class_weights(labels, 2, power=0.0) == 1)
    assert logit_offset(labels, 2, tau=1.0) == pytest.approx(np.log([0.8, 0.2]))


def params_of(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def noise_job(seed: int, offset: np.ndarray | None = None) -> FitJob:
    """Balanced labels on pure noise: all a model can learn is a prior over the classes."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 1, (60, 1, 8, 8)).astype(np.float32)
    return FitJob(images, np.arange(60) % 3, np.ones(60, np.float32), seed, offset)


def test_logit_offset_changes_training_and_not_inference() -> None:
    """An offset that makes class 0 look rare in training teaches the model to favour class 0 at
    prediction; were the offset also applied there, the favour would cancel out."""
    x = torch.from_numpy(np.random.default_rng(7).uniform(0, 1, (200, 1, 8, 8)).astype(np.float32))
    plain = fit_many([noise_job(1)], 3, 60, 5e-3, 30)[0][60]
    adjusted = fit_many([noise_job(1, np.array([-3.0, 0.0, 0.0], np.float32))], 3, 60, 5e-3, 30)[0][60]
    assert not torch.equal(params_of(plain), params_of(adjusted))
    with torch.no_grad():
        assert (adjusted(x).argmax(1) == 0).float().mean() > 0.9 > (plain(x).argmax(1) == 0).float().mean()
    # a zero offset is no offset, and jobs with and without one fit together as they fit alone
    zero = fit_many([noise_job(1, np.zeros(3, np.float32))], 3, 60, 5e-3, 30)[0][60]
    torch.testing.assert_close(params_of(zero), params_of(plain), atol=1e-6, rtol=0)
    together = fit_many([noise_job(1), noise_job(1, np.array([-3.0, 0.0, 0.0], np.float32))], 3, 60, 5e-3, 30)
    torch.testing.assert_close(params_of(together[0][60]), params_of(plain), atol=1e-5, rtol=0)
    torch.testing.assert_close(params_of(together[1][60]), params_of(adjusted), atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def splits() -> Splits:
    return Splits(pool=bright_set(14, 0), val=bright_set(5, 1), test=bright_set(5, 2))


def test_every_arm_gets_the_same_val_fits_and_test_is_only_scored(tiny_params: Params, splits: Splits, monkeypatch: pytest.MonkeyPatch) -> None:
    params = imbalanced(tiny_params)
    scored, tuned_on = [], []
    real_score, real_tune = protocol.score, protocol.tune

    def record_score(model, data, rare=None):
        scored.append((data, rare))
        return real_score(model, data, rare)

    def record_tune(plans, source, val, *args, **kwargs):
        tuned_on.append(val)
        return real_tune(plans, source, val, *args, **kwargs)

    monkeypatch.setattr(protocol, "score", record_score)
    monkeypatch.setattr(protocol, "tune", record_tune)
    cell = protocol.run_cell(splits, size=3, seed=0, params=params)

    assert {cell["selection"][arm]["val_fits"] for arm in NAMES} == {params.evaluate.budget}
    assert tuned_on == [splits.val], "tuning reads val, never test"
    assert [data for data, _ in scored] == [splits.test] * len(NAMES), "test is scored once per arm"
    assert all(rare == tuple(cell["rare_classes"]) for _, rare in scored)
    counts = np.array(cell["class_counts"])
    assert counts[cell["rare_classes"]].tolist() == [3] and sorted(np.delete(counts, cell["rare_classes"])) == [8, 8]
    for arm in NAMES:
        assert {"bal_acc", "rare_recall", "acc", "f1", "per_class"} <= set(cell["scores"][arm])
        assert {"steps", "lr"} <= set(cell["selection"][arm]["trace"][0]["setting"]), f"{arm} does not tune its training"
    assert cell["best_by_val"]["non_generative"] in NAMES[:5] and cell["best_by_val"]["generative"] in NAMES[5:]


def fake_cells(seeds: list[int]) -> list[dict]:
    """Test scores where the best fix by test (oversample) is not the best by val (reweight)."""
    test = {"plain": 0.70, "reweight": 0.75, "logit_adjust": 0.74, "oversample": 0.80, "classic_rare": 0.73, "vae_rare": 0.76, "classic_vae_rare": 0.77}
    val = {**test, "reweight": 0.90, "oversample": 0.60, "classic_vae_rare": 0.95}
    cells = []
    for seed in seeds:
        noise = 0.01 * seed
        scores = {arm: {m: acc + noise * (arm == "vae_rare") for m in ("acc", "bal_acc", "f1", "rare_recall")} | {"per_class": [acc] * 3} for arm, acc in test.items()}
        selection = {arm: {"chosen": {}, "val_acc": val[arm], "trace": [], "val_fits": 6} for arm in test}
        cells.append({"size": 5, "seed": seed, "scores": scores, "selection": selection, "quality": dict.fromkeys(QUALITY_KEYS, 0.5),
                      "vae_val_elbo": -20.0, "rare_classes": [seed % 3], "class_counts": [50, 5, 50],
                      "best_by_val": {"non_generative": "reweight", "generative": "classic_vae_rare"}})
    return cells


def test_the_best_fix_is_the_one_chosen_on_val_and_the_keys_are_stable() -> None:
    summary = summarize(fake_cells([0, 1, 2]), [{"acc": 0.9, "f1": 0.9}] * 3, [5])
    block = summary["n5"]
    assert block["best_non_generative"]["bal_acc_mean"] == pytest.approx(0.75), "chosen on val, not the test-best oversample"
    assert block["best_generative"]["gain_vs_best_mean"] == pytest.approx(0.02)
    assert block["vae_rare"]["gain_vs_best_mean"] == pytest.approx(0.01 + 0.01)
    assert block["vae_rare"]["gain_mean"] == pytest.approx(0.07)
    for arm in NAMES:
        assert {"bal_acc_mean", "bal_acc_lo", "rare_recall_hi", "f1_mean", "acc_mean", "val_fits"} <= set(block[arm])
        assert ("gain_mean" in block[arm]) == (arm != "plain")
        assert ("gain_vs_best_mean" in block[arm] and "mde_vs_best" in block[arm]) == BY_NAME[arm].generative
    per_class = per_class_means(fake_cells([0, 1, 2]))["n5"]
    assert per_class["rare_seeds"] == [1, 1, 1] and per_class["seeds"] == 3
    assert per_class["rare"]["plain"][1] == pytest.approx(0.70) and per_class["common"]["plain"][1] == pytest.approx(0.70)


def test_the_report_tables_and_verdict_read_the_imbalanced_metrics() -> None:
    cells = fake_cells([0, 1, 2])
    summary = summarize(cells, [{"acc": 0.9, "f1": 0.9}] * 3, [5])
    table = tables.imbalanced_table(summary, 5)
    assert table.count("\n") == 1 + len(NAMES) + 2
    per_class = tables.rare_per_class_table(per_class_means(cells), 5, ["a", "b", "c"])
    assert per_class.count("**rare**") == 3
    answer = imbalanced_answer(summary, 5)
    assert answer.startswith(("Yes", "No", "Not shown", "Not enough")) and "balanced accuracy" in answer
    assert "best non-generative fix" in imbalanced_headline(summary, 5, 3, 50)
