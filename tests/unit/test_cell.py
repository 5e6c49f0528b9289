"""One learning-curve cell: what each model may see, and the shape of the metrics it reports."""

import numpy as np
import pytest

from pipeline.config import Params
from pipeline.data.imageset import ImageSet
from pipeline.evaluation import cell as protocol
from pipeline.evaluation import selection
from pipeline.evaluation.arms import NAMES as ARMS
from pipeline.evaluation.cell import Splits
from pipeline.evaluation.learning_curve import QUALITY_KEYS, summarize


def noise_set(n_per_class: int, seed: int) -> ImageSet:
    """Random images: every row is unique, so a leaked test image is recognisable anywhere."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (3 * n_per_class, 8, 8, 1), dtype=np.uint8)
    return ImageSet(images, np.repeat(np.arange(3), n_per_class), ("a", "b", "c"))


def rows(data: ImageSet) -> set[bytes]:
    return {image.tobytes() for image in data.images}


def test_no_test_image_reaches_training_or_selection(tiny_params: Params, monkeypatch: pytest.MonkeyPatch) -> None:
    splits = Splits(pool=noise_set(10, 0), val=noise_set(4, 1), test=noise_set(4, 2))
    seen: list[tuple[str, ImageSet]] = []
    real_fit_cvae, real_fit_classifier = protocol.fit_cvae, selection.fit_classifier

    def record_cvae(train, val, *args, **kwargs):
        seen.extend([("vae-train", train), ("vae-val", val)])
        return real_fit_cvae(train, val, *args, **kwargs)

    def record_classifier(training_rows, *args, **kwargs):
        seen.append(("classifier", training_rows.data))
        return real_fit_classifier(training_rows, *args, **kwargs)

    monkeypatch.setattr(protocol, "fit_cvae", record_cvae)
    monkeypatch.setattr(selection, "fit_classifier", record_classifier)
    cell = protocol.run_cell(splits, size=3, seed=0, params=tiny_params)

    test_rows = rows(splits.test)
    assert seen, "nothing was trained"
    for role, data in seen:
        assert not (rows(data) & test_rows), f"a test image reached {role}"
    vae_train = next(data for role, data in seen if role == "vae-train")
    classifier_real = next(data for role, data in seen if role == "classifier")
    # the VAE sees exactly the real images the classifier sees, and they come from the pool
    assert rows(vae_train) == rows(classifier_real) <= rows(splits.pool)
    assert len(vae_train) == 9
    assert set(cell["scores"]) == set(ARMS)


def fake_cells(sizes: list[int], seeds: list[int], shift: float) -> list[dict]:
    cells = []
    for size in sizes:
        for seed in seeds:
            base = 0.5 + 0.01 * seed
            scores = {arm: {"acc": base + (shift if "vae" in arm else 0.0), "f1": base, "per_class": [base] * 3} for arm in ARMS}
            quality = dict.fromkeys(QUALITY_KEYS, 0.5)
            cells.append({"size": size, "seed": seed, "scores": scores, "quality": quality, "vae_val_elbo": -20.0})
    return cells


def test_a_known_shift_gives_that_gain_with_a_zero_width_interval() -> None:
    full = [{"acc": 0.9, "f1": 0.9}] * 3
    summary = summarize(fake_cells([5], [0, 1, 2], shift=0.02), full, [5])
    vae = summary["n5"]["real_vae"]
    assert vae["gain_mean"] == pytest.approx(0.02)
    assert vae["gain_lo"] == pytest.approx(0.02) and vae["gain_hi"] == pytest.approx(0.02)
    assert vae["gap_closed"] == pytest.approx(0.02 / 0.39)
    assert summary["n5"]["real_classic"]["gain_mean"] == pytest.approx(0.0)


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
            "n5.quality.precision", "n5.quality.near_copy_rate", "full.acc_mean", "n5.synthetic_only.f1_mean"} <= keys
    assert len(keys) == 6 + 2 * (5 * 6 + 3 * 4 + 2 * 3 + 8)  # full; per size: arms, gains, vs classic, quality


def test_logreg_classifier_runs_every_arm(tiny_params: Params) -> None:
    splits = Splits(pool=noise_set(10, 0), val=noise_set(4, 1), test=noise_set(4, 2))
    params = tiny_params.model_copy(update={"evaluate": tiny_params.evaluate.model_copy(update={"classifier": "logreg"})})
    cell = protocol.run_cell(splits, size=3, seed=0, params=params)
    assert set(cell["scores"]) == set(ARMS)
    assert all(0.0 <= cell["scores"][arm]["acc"] <= 1.0 for arm in ARMS)


def test_selection_reads_val_and_never_test(tiny_params: Params, monkeypatch: pytest.MonkeyPatch) -> None:
    """Swapping the test split for another changes no choice; test is scored once per arm."""
    pool, val = noise_set(10, 0), noise_set(4, 1)
    scored: list[ImageSet] = []
    real_score = protocol.score

    def record(model, data):
        scored.append(data)
        return real_score(model, data)

    monkeypatch.setattr(protocol, "score", record)
    first = protocol.run_cell(Splits(pool, val, noise_set(4, 2)), size=3, seed=0, params=tiny_params)
    other_test = noise_set(4, 3)
    scored.clear()
    second = protocol.run_cell(Splits(pool, val, other_test), size=3, seed=0, params=tiny_params)
    assert first["selection"] == second["selection"]
    assert sum(data is other_test for data in scored) == len(ARMS)
    for arm, selection in first["selection"].items():
        assert "auto" not in selection["chosen"].values()
        assert len(selection["trace"]) > 1, f"{arm}: nothing was searched"
