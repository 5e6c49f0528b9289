"""One learning-curve cell: what each model may see, the equal tuning budget, and the metrics."""

import numpy as np
import pytest

from pipeline.config import EvaluateConfig, Params
from pipeline.errors import PipelineError
from pipeline.data.imageset import ImageSet
from pipeline.evaluation import cell as protocol
from pipeline.evaluation.arms import NAMES as ARMS
from pipeline.evaluation.cell import Splits, cell_val
from pipeline.evaluation.learning_curve import QUALITY_KEYS, summarize
from pipeline.models import classify


def noise_set(n_per_class: int, seed: int) -> ImageSet:
    """Random images: every row is unique, so a leaked test image is recognisable anywhere."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (3 * n_per_class, 8, 8, 1), dtype=np.uint8)
    return ImageSet(images, np.repeat(np.arange(3), n_per_class), ("a", "b", "c"))


def bright_set(n_per_class: int, seed: int) -> ImageSet:
    """Class k lights up row band k: easy, so a working classifier scores far above chance."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), n_per_class)
    images = rng.integers(0, 60, (len(labels), 8, 8, 1)).astype(np.uint8)
    for i, k in enumerate(labels):
        images[i, 2 * k : 2 * k + 3] = rng.integers(180, 256, (3, 8, 1))
    return ImageSet(images, labels, ("a", "b", "c"))


def rows(data: ImageSet) -> set[bytes]:
    return {image.tobytes() for image in data.images}


def test_no_test_image_reaches_training_or_selection(tiny_params: Params, monkeypatch: pytest.MonkeyPatch) -> None:
    splits = Splits(pool=noise_set(10, 0), val=noise_set(4, 1), test=noise_set(4, 2))
    seen: list[tuple[str, set[bytes]]] = []
    real_fit_cvae, real_batched_run = protocol.fit_cvae, classify.BatchedRun

    def record_cvae(train, val, *args, **kwargs):
        seen.extend([("vae-train", rows(train)), ("vae-val", rows(val))])
        return real_fit_cvae(train, val, *args, **kwargs)

    def record_fits(jobs, *args, **kwargs):
        for job in jobs:
            seen.append(("classifier", {np.rint(x.transpose(1, 2, 0) * 255).astype(np.uint8).tobytes() for x in job.images}))
        return real_batched_run(jobs, *args, **kwargs)

    monkeypatch.setattr(protocol, "fit_cvae", record_cvae)
    monkeypatch.setattr(classify, "BatchedRun", record_fits)
    cell = protocol.run_cell(splits, size=3, seed=0, params=tiny_params)

    test_rows = rows(splits.test)
    assert len(seen) > 5, "nothing was trained"
    for role, data in seen:
        assert not (data & test_rows), f"a test image reached {role}"
    vae_train = next(data for role, data in seen if role == "vae-train")
    # the VAE sees exactly the real images the real-only classifier sees, and they come from the pool
    assert vae_train in [data for role, data in seen if role == "classifier"]
    assert vae_train <= rows(splits.pool) and len(vae_train) == 9
    assert set(cell["scores"]) == set(ARMS)


def test_the_quality_judge_never_trains_on_an_image_a_generator_saw(tiny_params: Params, monkeypatch: pytest.MonkeyPatch) -> None:
    """The assessor trains on val (the run's, once), the VAE on the cell's pool rows: disjoint."""
    from pipeline.evaluation import assessor

    splits = Splits(pool=noise_set(10, 0), val=noise_set(4, 1), test=noise_set(4, 2))
    judged, trained = [], []
    real_fit_assessor, real_fit_cvae = assessor.fit_assessor, protocol.fit_cvae
    monkeypatch.setattr(assessor, "_RUN_ASSESSORS", {})
    monkeypatch.setattr(assessor, "fit_assessor", lambda images, *a, **k: judged.append(rows(images)) or real_fit_assessor(images, *a, **k))
    monkeypatch.setattr(protocol, "fit_cvae", lambda train, *a, **k: trained.append(rows(train)) or real_fit_cvae(train, *a, **k))
    for size in (2, 3):
        protocol.run_cell(splits, size=size, seed=0, params=tiny_params)
    assert judged == [rows(splits.val)]  # once for both cells
    assert len(trained) == 2 and not any(vae & judged[0] for vae in trained)


def test_every_arm_tries_the_same_number_of_settings_on_val(tiny_params: Params) -> None:
    splits = Splits(pool=noise_set(10, 0), val=noise_set(4, 1), test=noise_set(4, 2))
    cell = protocol.run_cell(splits, size=3, seed=0, params=tiny_params)
    fits = {arm: cell["selection"][arm]["val_fits"] for arm in ARMS}
    assert set(fits.values()) == {tiny_params.evaluate.budget}, fits
    for arm in ARMS:
        trace = cell["selection"][arm]["trace"]
        settings = [step["setting"] for step in trace]
        assert len({tuple(sorted(s.items())) for s in settings}) == len(settings), f"{arm} tried a setting twice"
        assert cell["selection"][arm]["chosen"] in settings
        assert {"steps", "lr"} <= set(settings[0]), f"{arm} does not tune its training"
        for step in trace:  # successive halving: a stopped run's longer settings have no score
            if "stopped_at" in step:
                assert step["val_acc"] is None and step["setting"]["steps"] > step["stopped_at"]
    summary = summarize([cell], [{"acc": 0.9, "f1": 0.9}], [3])
    assert {summary["n3"][arm]["val_fits"] for arm in ARMS} == {tiny_params.evaluate.budget}


def test_selection_reads_val_and_never_test(tiny_params: Params, monkeypatch: pytest.MonkeyPatch) -> None:
    """Swapping the test split for another changes no choice; test is scored once per arm."""
    pool, val = noise_set(10, 0), noise_set(4, 1)
    scored: list[ImageSet] = []
    real_score = protocol.score

    def record(model, data, *rest):
        scored.append(data)
        return real_score(model, data, *rest)

    monkeypatch.setattr(protocol, "score", record)
    first = protocol.run_cell(Splits(pool, val, noise_set(4, 2)), size=3, seed=0, params=tiny_params)
    other_test = noise_set(4, 3)
    scored.clear()
    second = protocol.run_cell(Splits(pool, val, other_test), size=3, seed=0, params=tiny_params)
    assert first["selection"] == second["selection"]
    # The VAE (its best epoch) and the samples it draws are chosen without test, too.
    assert first["vae_val_elbo"] == second["vae_val_elbo"] and repr(first["quality"]) == repr(second["quality"])  # nan-safe
    assert sum(data is other_test for data in scored) == len(ARMS)
    for arm, selection in first["selection"].items():
        assert "auto" not in selection["chosen"].values()


def test_logreg_classifier_learns_in_every_arm_that_sees_real_images(tiny_params: Params) -> None:
    splits = Splits(pool=bright_set(20, 0), val=bright_set(6, 1), test=bright_set(6, 2))
    params = tiny_params.model_copy(update={"evaluate": tiny_params.evaluate.model_copy(update={"classifier": "logreg"})})
    cell = protocol.run_cell(splits, size=5, seed=0, params=params)
    assert set(cell["scores"]) == set(ARMS)
    for arm in ("real", "real_classic", "real_vae", "real_classic_vae"):
        assert cell["scores"][arm]["acc"] >= 0.9, arm


def fake_cells(sizes: list[int], seeds: list[int], shift: float) -> list[dict]:
    cells = []
    for size in sizes:
        for seed in seeds:
            base = 0.5 + 0.01 * seed
            scores = {arm: {"acc": base + (shift if "vae" in arm else 0.0), "f1": base, "per_class": [base] * 3} for arm in ARMS}
            selection = {arm: {"chosen": {"steps": 100}, "val_acc": base, "trace": [], "val_fits": 6} for arm in ARMS}
            quality = dict.fromkeys(QUALITY_KEYS, 0.5)
            cells.append({"size": size, "seed": seed, "scores": scores, "selection": selection, "quality": quality, "vae_val_elbo": -20.0})
    return cells


def test_a_known_noisy_shift_gives_that_gain_and_its_detectable_effect() -> None:
    full = [{"acc": 0.9, "f1": 0.9}] * 3
    cells = fake_cells([5], [0, 1, 2], shift=0.02)
    for c, noise in zip(cells, (0.0, 0.01, -0.01)):
        c["scores"]["real_vae"]["acc"] += noise
    vae = summarize(cells, full, [5])["n5"]["real_vae"]
    assert vae["gain_mean"] == pytest.approx(0.02)
    assert vae["gain_lo"] < 0.02 < vae["gain_hi"]
    assert vae["mde"] > 0.0 and vae["gap_closed"] == pytest.approx(0.02 / 0.39)


def test_metric_keys_are_stable() -> None:
    """`dvc metrics diff` and `dvc exp show` compare these keys across experiments: renaming one
    breaks every comparison with older runs, so changes must be deliberate."""
    summary = summarize(fake_cells([5, 10], [0, 1], shift=0.0), [{"acc": 0.9, "f1": 0.9}] * 2, [5, 10])

    def flat(tree: dict, prefix: str = "") -> set[str]:
        keys = set()
        for key, value in tree.items():
            keys |= flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key}
        return keys

    keys = flat(summary)
    assert {"n5.real.acc_mean", "n10.real_vae.acc_lo", "n10.real_vae.gain_mean", "n10.real_vae.gain_hi",
            "n10.real_classic_vae.gain_vs_classic_mean", "n5.real_vae.gap_closed", "n5.quality.fd",
            "n5.quality.precision", "n5.quality.near_copy_rate", "full.acc_mean", "n5.synthetic_only.f1_mean",
            "n5.real.val_fits", "n10.real_vae.mde", "n10.real_classic_vae.mde_vs_classic"} <= keys
    # full; per size: 5 arms x (acc, f1, val_fits), 3 gains + gap + mde, 2 vs classic + mde, quality
    assert len(keys) == 6 + 2 * (5 * 7 + 3 * 5 + 2 * 4 + len(QUALITY_KEYS))


def test_results_do_not_depend_on_the_number_of_worker_processes(tiny_params: Params) -> None:
    from pipeline.evaluation import learning_curve

    splits = Splits(pool=noise_set(10, 0), val=noise_set(4, 1), test=noise_set(4, 2))

    def with_workers(n: int) -> tuple[list[dict], list[dict]]:
        evaluate = tiny_params.evaluate.model_copy(update={"workers": n, "budget": 2})
        return learning_curve.run(splits, tiny_params.model_copy(update={"evaluate": evaluate}), show_progress=False)

    assert with_workers(1) == with_workers(2)


def test_choices_do_not_flip_with_the_float_reduction_order(tiny_params: Params, digits_dir) -> None:
    """One and two torch threads sum in different orders (last-bit differences, as between CPUs);
    the margin a new choice needs keeps every arm's choice the same."""
    from pipeline.data.parquet import read_imageset

    pool, val, test = (read_imageset(digits_dir / f"{name}.parquet") for name in ("pool", "val", "test"))
    splits = Splits(pool, val, test)

    def chosen(threads: int) -> dict:
        params = tiny_params.model_copy(update={
            "trainer": tiny_params.trainer.model_copy(update={"num_threads": threads}),
            "evaluate": tiny_params.evaluate.model_copy(update={"steps": 40, "batch_size": 32}),
        })
        cell = protocol.run_cell(splits, size=5, seed=0, params=params)
        return {arm: s["chosen"] for arm, s in cell["selection"].items()}

    assert chosen(1) == chosen(2)


def test_val_per_class_draws_that_many_val_images_per_class_per_seed() -> None:
    labels = np.repeat(np.arange(3), 20)
    val = ImageSet(np.arange(60, dtype=np.uint8).reshape(60, 1, 1, 1).repeat(8, 1).repeat(8, 2), labels, ("a", "b", "c"))
    assert cell_val(val, 5, 0, EvaluateConfig()) is val  # null: the whole val split, as before
    fixed = cell_val(val, 5, 0, EvaluateConfig(val_per_class=4))
    assert fixed.class_counts().tolist() == [4, 4, 4]
    same_size = cell_val(val, 5, 0, EvaluateConfig(val_per_class="train_size"))
    assert same_size.class_counts().tolist() == [5, 5, 5]
    assert set(fixed.images[:, 0, 0, 0]) <= set(same_size.images[:, 0, 0, 0])  # nested, like the training draws
    assert set(cell_val(val, 5, 1, EvaluateConfig(val_per_class=4)).images[:, 0, 0, 0]) != set(fixed.images[:, 0, 0, 0])
    with pytest.raises(PipelineError, match="evaluate.val_per_class"):
        cell_val(val, 5, 0, EvaluateConfig(val_per_class=21))
