"""Many classifiers trained in one run are the ones each would be trained alone."""

import numpy as np
import pytest
import torch

from pipeline.models import batched
from pipeline.models.batched import FitJob, fit_many, forward_many
from pipeline.models.classifier import SmallCNN

STEPS, LR, BATCH = 12, 5e-3, 32
# Fits of one job alone and among others run different kernels (grouped convolutions of another
# size), so their weights agree to float rounding amplified over STEPS Adam steps, not bitwise:
# with the portable kernels (pipeline/kernels.py) one weight in 70851 differed by 1.6e-4 (0.4 %
# of it), under 1e-5 with AVX-512 ones. Mixing jobs up would move every weight by far more.
TOL, RTOL = 1e-4, 1e-2


def make_job(rows: int, seed: int, shape: tuple[int, int, int] = (1, 8, 8), classes: int = 3) -> FitJob:
    """Easy synthetic data: class c is brighter in horizontal band c."""
    rng = np.random.default_rng(1000 + seed)
    labels = rng.integers(0, classes, rows)
    images = rng.uniform(0, 0.3, (rows, *shape)).astype(np.float32)
    band = shape[1] // classes
    for i, c in enumerate(labels):
        images[i, :, c * band : (c + 1) * band] += 0.6
    return FitJob(images, labels.astype(np.int64), np.ones(rows, np.float32), seed)


def params(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def predict(model: SmallCNN, job: FitJob) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(job.images)).argmax(1).numpy()


JOBS = [make_job(20, 0), make_job(50, 1), make_job(37, 2)]  # rows below, at and above BATCH
HELD_OUT = make_job(60, 99)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def together() -> list[dict[int, SmallCNN]]:
    return fit_many(JOBS, 3, STEPS, LR, BATCH, snapshots=(5,))


def test_fitting_together_equals_fitting_alone(together: list[dict[int, SmallCNN]]) -> None:
    for job, models in zip(JOBS, together):
        alone = fit_many([job], 3, STEPS, LR, BATCH)[0][STEPS]
        torch.testing.assert_close(params(models[STEPS]), params(alone), atol=TOL, rtol=RTOL)
        assert (predict(models[STEPS], HELD_OUT) == predict(alone, HELD_OUT)).all()


def test_same_jobs_give_bitwise_identical_models(together: list[dict[int, SmallCNN]]) -> None:
    torch.manual_seed(12345)  # the global RNG plays no part...
    state = torch.get_rng_state()
    again = fit_many(JOBS, 3, STEPS, LR, BATCH, snapshots=(5,))
    assert torch.equal(torch.get_rng_state(), state)  # ...and is left as it was
    for first, second in zip(together, again):
        assert all(torch.equal(params(first[n]), params(second[n])) for n in (5, STEPS))


def test_initial_weights_are_those_of_a_seeded_small_cnn() -> None:
    torch.manual_seed(JOBS[1].seed)
    expected = SmallCNN(1, 3)
    stacked, _ = batched._initial_params(JOBS, 3, "cpu")
    assert all(torch.equal(group[1], p) for group, p in zip(stacked, expected.parameters()))


def test_different_seeds_give_different_models(together: list[dict[int, SmallCNN]]) -> None:
    reseeded = FitJob(JOBS[0].images, JOBS[0].labels, JOBS[0].weights, seed=123)
    other = fit_many([reseeded], 3, STEPS, LR, BATCH)[0][STEPS]
    assert not torch.allclose(params(other), params(together[0][STEPS]), atol=1e-3)


def test_snapshot_equals_a_run_of_that_length(together: list[dict[int, SmallCNN]]) -> None:
    assert set(together[1]) == {5, STEPS}
    short = fit_many([JOBS[1]], 3, 5, LR, BATCH)[0][5]
    torch.testing.assert_close(params(together[1][5]), params(short), atol=TOL, rtol=RTOL)


def test_weights_are_normalised_per_batch() -> None:
    """Doubling every weight is exact in floating point and the loss divides by the weight sum,
    so the model must be bitwise the same."""
    job = make_job(40, 5)
    doubled = FitJob(job.images, job.labels, job.weights * 2, job.seed)
    first, second = (fit_many([j], 3, STEPS, LR, BATCH)[0][STEPS] for j in (job, doubled))
    assert torch.equal(params(first), params(second))


def test_rows_of_weight_zero_teach_nothing() -> None:
    """With class 2's rows weighted 0 the model never sees a reason to predict class 2."""
    job = make_job(90, 6)
    muted = FitJob(job.images, job.labels, np.where(job.labels == 2, 0, 1).astype(np.float32), job.seed)
    normal, silent = (fit_many([j], 3, 40, LR, BATCH)[0][40] for j in (job, muted))
    is_two = HELD_OUT.labels == 2
    assert (predict(normal, HELD_OUT)[is_two] == 2).mean() > 0.8
    assert (predict(silent, HELD_OUT) == 2).mean() < 0.05


def test_a_model_learns_its_training_data() -> None:
    job = make_job(120, 7, shape=(3, 16, 16))
    model = fit_many([job], 3, 60, LR, BATCH)[0][60]
    assert (predict(model, job) == job.labels).mean() > 0.9  # chance is 1/3


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 28, 28), (1, 12, 20)])
def test_stacked_forward_is_small_cnn_forward(shape: tuple[int, int, int]) -> None:
    models = [SmallCNN(shape[0], 4).eval() for _ in range(3)]
    x = torch.rand(5, *shape)
    stacked = [torch.stack(group) for group in zip(*(m.parameters() for m in models))]
    with torch.no_grad():
        logits = forward_many(stacked, x.repeat(1, 3, 1, 1))
        expected = torch.stack([m(x) for m in models])
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)


def test_rejects_jobs_of_different_image_shapes() -> None:
    with pytest.raises(ValueError, match="one shape"):
        fit_many([make_job(10, 0), make_job(10, 1, shape=(1, 16, 16))], 3, 2, LR, BATCH)


def test_groups_that_fit_in_cache_give_the_same_models(
    together: list[dict[int, SmallCNN]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batched, "CACHE_BYTES", 1)  # one job per group
    apart = fit_many(JOBS, 3, STEPS, LR, BATCH, snapshots=(5,))
    for first, second in zip(together, apart):
        torch.testing.assert_close(params(first[STEPS]), params(second[STEPS]), atol=TOL, rtol=RTOL)


def _rows(job: FitJob):
    from pipeline.data.imageset import ImageSet
    from pipeline.models import classify

    images = np.rint(job.images.transpose(0, 2, 3, 1) * 255).astype(np.uint8)
    return classify.TrainingRows.of(ImageSet(images, job.labels, ("a", "b", "c")))


def test_rows_asked_for_a_short_length_train_only_that_long() -> None:
    """A run ends at its longest request, with the model a longer run would have snapshotted."""
    from pipeline.config import EvaluateConfig, TrainerConfig
    from pipeline.models import classify

    short, long_ = _rows(JOBS[0]), _rows(JOBS[1])
    cfg, trainer = EvaluateConfig(batch_size=BATCH), TrainerConfig()
    runs = classify.FitRuns([classify.FitRequest(short, 4, LR), classify.FitRequest(long_, STEPS, LR)], cfg, trainer, seed=0)
    first = runs.advance(4)
    assert set(first) == {0, 1} and [b.running() for b, _ in runs.batches] == [[1]]  # the short run ended
    assert set(runs.advance(STEPS)) == {1}
    snapshot = classify.fit_classifiers([classify.FitRequest(short, 4, LR), classify.FitRequest(short, STEPS, LR)], cfg, trainer, seed=0)
    torch.testing.assert_close(params(first[0].model), params(snapshot[0].model), atol=TOL, rtol=RTOL)


def test_stopping_some_jobs_leaves_the_others_unchanged(together: list[dict[int, SmallCNN]]) -> None:
    """Successive halving stops runs between lengths; the runs that go on end as if none stopped."""
    run = batched.BatchedRun(JOBS, 3, STEPS, LR, BATCH)
    at_5 = run.advance(5)
    run.stop({1})
    assert run.running() == [0, 2]
    at_end = run.advance(STEPS)
    assert set(at_end) == {0, 2}
    for k in (0, 2):
        torch.testing.assert_close(params(at_5[k]), params(together[k][5]), atol=TOL, rtol=RTOL)
        torch.testing.assert_close(params(at_end[k]), params(together[k][STEPS]), atol=TOL, rtol=RTOL)
