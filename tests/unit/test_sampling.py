from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from pipeline.stages import generate as generate_stage
from pipeline.config import GenerateConfig, Params
from pipeline.errors import PipelineError
from pipeline.data.imageset import ImageSet
from pipeline.models.cvae import CVAE
from pipeline.models.sampling import Tally, generate


def fixed(**settings) -> GenerateConfig:
    """A config with every `auto` knob pinned, as sampling needs."""
    return GenerateConfig(**{"strategy": "prior", "temperature": 1.0, "ratio": None, "min_confidence": 0.0, **settings})


@pytest.fixture(scope="module")
def train() -> ImageSet:
    rng = np.random.default_rng(0)
    return ImageSet(rng.integers(0, 256, (12, 8, 8, 1), dtype=np.uint8), np.repeat(np.arange(3), 4), ("a", "b", "c"))


@pytest.fixture(scope="module")
def model() -> CVAE:
    torch.manual_seed(0)
    return CVAE(1, 8, 8, num_classes=3, latent_dim=4, hidden=8).eval()


def collect(model: CVAE, train: ImageSet, cfg: GenerateConfig, scorer=None, tally=None) -> tuple[np.ndarray, np.ndarray]:
    batches = list(generate(model, train, cfg, seed=0, scorer=scorer, tally=tally))
    if not batches:
        return np.zeros((0, 8, 8, 1), np.uint8), np.zeros(0, np.int64)
    return np.concatenate([b.images for b in batches]), np.concatenate([b.labels for b in batches])


@pytest.mark.parametrize("strategy", ["prior", "posterior", "interpolate", "borrow"])
def test_each_strategy_gives_the_requested_labeled_samples(model: CVAE, train: ImageSet, strategy: str) -> None:
    images, labels = collect(model, train, fixed(strategy=strategy, per_class=5, batch_size=2, temperature=0.5))
    assert images.shape == (15, 8, 8, 1) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [5, 5, 5]
    again, _ = collect(model, train, fixed(strategy=strategy, per_class=5, batch_size=2, temperature=0.5))
    assert np.array_equal(images, again)  # seeded


def test_ratio_scales_with_the_real_class_counts(model: CVAE, train: ImageSet) -> None:
    _, labels = collect(model, train, fixed(per_class=None, ratio=0.5))
    assert np.bincount(labels).tolist() == [2, 2, 2]


def test_confidence_filter_rejects_what_the_judge_doubts(model: CVAE, train: ImageSet) -> None:
    def judge(images: torch.Tensor) -> torch.Tensor:
        # believes class 0 always, the others never
        proba = torch.zeros(len(images), 3)
        proba[:, 0] = 1.0
        return proba

    tally = Tally()
    _, labels = collect(model, train, fixed(per_class=3, min_confidence=0.5), scorer=judge, tally=tally)
    assert set(labels) == {0}
    assert tally.rejected_confidence > 0 and tally.kept == {0: 3, 1: 0, 2: 0}


def test_near_copy_filter(model: CVAE, train: ImageSet) -> None:
    tally = Tally()
    _, labels = collect(model, train, fixed(per_class=2, min_nn_distance=1e6), tally=tally)
    assert len(labels) == 0 and tally.rejected_copy == sum(tally.drawn.values())


def untrained_checkpoint(params: Params, digits_dir: Path, path: Path) -> Path:
    from pipeline.models import vae

    vae.save_model(vae.build_module(generate_stage.read_imageset(digits_dir / "train.parquet"), params.vae), path)
    return path


def test_stage_streams_into_a_contract_file(tiny_params: Params, digits_dir: Path, tmp_path: Path) -> None:
    model_path = untrained_checkpoint(tiny_params, digits_dir, tmp_path / "cvae.ckpt")
    params = tiny_params.model_copy(update={"generate": fixed(per_class=7, batch_size=4, min_confidence=0.01)})
    metrics = generate_stage.run(params, model_path, digits_dir / "train.parquet", tmp_path / "syn.parquet", tmp_path / "gen.json", show_progress=False)
    table = pq.read_table(tmp_path / "syn.parquet")
    assert table.num_rows == metrics["rows"] <= 70
    assert metrics["drawn"] >= metrics["rows"]
    assert set(table.column("source").to_pylist()) == {"synthetic"}
    assert len(set(table.column("checkpoint").to_pylist())) == 1
    assert not np.isnan(table.column("confidence").to_numpy()).any()


def test_auto_settings_are_chosen_on_val_and_recorded(tiny_params: Params, digits_dir: Path, tmp_path: Path) -> None:
    model_path = untrained_checkpoint(tiny_params, digits_dir, tmp_path / "cvae.ckpt")
    args = (model_path, digits_dir / "train.parquet", tmp_path / "syn.parquet", tmp_path / "gen.json")
    with pytest.raises(PipelineError, match="val split"):
        generate_stage.run(tiny_params, *args, show_progress=False)
    metrics = generate_stage.run(tiny_params, *args, show_progress=False, val_path=digits_dir / "val.parquet")
    chosen = metrics["selection"]["chosen"]
    assert "auto" not in chosen.values()
    table = pq.read_table(tmp_path / "syn.parquet")
    assert set(table.column("strategy").to_pylist()) <= {chosen["strategy"]}, metrics
    # the same budget as every learning-curve arm; only what does not move between CPUs is kept
    assert metrics["selection"]["val_fits"] == tiny_params.evaluate.budget
    assert set(metrics["selection"]) == {"chosen", "val_fits"}


def test_a_filter_that_rejects_every_sample_stops_with_one_line_and_no_file(
    tiny_params: Params, digits_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = tiny_params.model_dump(mode="json")
    raw["generate"] = fixed(per_class=2, batch_size=8, min_confidence=1.0).model_dump(mode="json")  # nothing is that sure
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    out, metrics = tmp_path / "synthetic" / "train.parquet", tmp_path / "generate.json"
    argv = ["--params", tmp_path / "params.yaml", "--model", untrained_checkpoint(tiny_params, digits_dir, tmp_path / "cvae.ckpt"),
            "--train", digits_dir / "train.parquet", "--val", digits_dir / "val.parquet", "--out", out, "--metrics", metrics]
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        generate_stage.main([str(arg) for arg in argv])
    assert stopped.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("error: generate.min_confidence: 1.0 rejected"), error
    assert not out.exists() and not metrics.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())  # no temporary file left either


def test_missing_checkpoint_is_one_clear_line(tiny_params: Params, digits_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="checkpoint not found"):
        generate_stage.run(tiny_params, tmp_path / "none.ckpt", digits_dir / "train.parquet", tmp_path / "o.parquet", None, show_progress=False)
    assert not (tmp_path / "o.parquet").exists()


@pytest.mark.parametrize(("size", "start"), [(8, "prior"), (16, "posterior")])
def test_the_generate_stage_starts_its_search_where_the_image_size_says(tiny_params: Params, size: int, start: str) -> None:
    """With a budget of one try the generate stage keeps its start point: `prior` for small
    images, `posterior` (codes near the class's own images) from 16 px (selection.LARGE_IMAGE_START)."""
    from pipeline.evaluation.tuning import choose_sampling

    rng = np.random.default_rng(0)

    def images(n: int) -> ImageSet:
        return ImageSet(rng.integers(0, 256, (n, size, size, 1), dtype=np.uint8), np.arange(n) % 3, ("a", "b", "c"))

    torch.manual_seed(0)
    model = CVAE(1, size, size, num_classes=3, latent_dim=4, hidden=8).eval()
    params = tiny_params.model_copy(update={"evaluate": tiny_params.evaluate.model_copy(update={"budget": 1})})
    chosen, selection, _ = choose_sampling(params, model, images(12), images(9))
    assert chosen.strategy == selection["chosen"]["strategy"] == start
    assert selection["val_fits"] == 1
