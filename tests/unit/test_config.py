from pathlib import Path

import pytest

from pipeline.config import Params, load_params, parse_params
from pipeline.errors import PipelineError

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_params_are_valid_and_match_the_defaults() -> None:
    assert load_params(ROOT / "params.yaml") == Params()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"vae": {"epochs": -1}}, "vae.epochs"),
        ({"dataset": {"test_fraction": 1.5}}, "dataset.test_fraction"),
        ({"dataset": {"val_fraction": 0}}, "dataset.val_fraction"),
        ({"dataset": {"source": "imagenet"}}, "dataset.source"),
        ({"vae": {"epochz": 3}}, "vae.epochz: unknown param"),
        ({"dataset": {"test_fraction": 0.5, "val_fraction": 0.5}}, "must leave a training pool"),
        ({"dataset": {"source": "csv"}}, "needs dataset.path"),
        ({"evaluate": {"seeds": []}}, "evaluate.seeds"),
        ({"vae": {"lr": "fast"}}, "vae.lr"),
        ({"generate": {"per_class": None, "ratio": None}}, "generate.per_class or generate.ratio"),
        # a value-or-`auto` param: one problem, both accepted forms named, no pydantic type tags
        ({"generate": {"temperature": -1}}, "generate.temperature: Input should be greater than 0, or 'auto' (got -1)"),
        ({"generate": {"strategy": "best"}}, "generate.strategy: Input should be 'prior', 'posterior', 'interpolate' or 'borrow', or 'auto'"),
        ({"evaluate": {"semi_supervised_vae": {"latent_dim": 0}}}, "semi_supervised_vae.latent_dim: Input should be greater than or equal to 1"),
        ({"evaluate": {"semi_supervised_vae": {"epoch": 3}}}, "semi_supervised_vae.epoch: unknown param"),
    ],
)
def test_invalid_values_name_the_param(raw: dict, expected: str) -> None:
    with pytest.raises(PipelineError) as err:
        parse_params(raw)
    message = str(err.value)
    assert expected in message
    assert "\n" not in message


def test_params_file_problems_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="not found"):
        load_params(tmp_path / "missing.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("vae: [unclosed")
    with pytest.raises(PipelineError, match="not valid YAML"):
        load_params(bad)


def test_config_is_frozen() -> None:
    with pytest.raises(Exception):
        Params().vae.epochs = 3  # type: ignore[misc]


def test_only_the_semi_supervised_scenario_trains_its_cells_vaes_with_its_own_vae_params() -> None:
    semi = parse_params({"vae": {"hidden_channels": 8}, "evaluate": {"scenario": "semi_supervised", "semi_supervised_vae": {"epochs": 7}}})
    assert semi.cell_vae() == semi.vae.model_copy(update={"epochs": 7})
    balanced = parse_params({"evaluate": {"semi_supervised_vae": {"epochs": 7}}})
    assert balanced.cell_vae() == balanced.vae


@pytest.mark.parametrize(("size", "hidden", "likelihood"), [(8, 32, "bernoulli"), (15, 32, "bernoulli"), (16, 64, "gaussian"), (28, 64, "gaussian")])
def test_auto_vae_width_and_likelihood_follow_the_image_size(size: int, hidden: int, likelihood: str) -> None:
    resolved = Params().vae.for_images(size, size)
    assert (resolved.hidden_channels, resolved.likelihood) == (hidden, likelihood)
    pinned = parse_params({"vae": {"hidden_channels": 8, "likelihood": "bernoulli"}}).vae.for_images(size, size)
    assert (pinned.hidden_channels, pinned.likelihood) == (8, "bernoulli")  # a value the user set stays


def test_a_built_vae_carries_the_resolved_settings_in_its_checkpoint_hyperparameters() -> None:
    """`generate` rebuilds the model from the checkpoint alone: `auto` must not reach it."""
    import numpy as np

    from pipeline.data.imageset import ImageSet
    from pipeline.models.vae import build_module

    letters = ImageSet(np.zeros((4, 28, 28, 1), np.uint8), np.array([0, 1, 0, 1]), ["a", "b"])
    module = build_module(letters, Params().vae)
    assert (module.hparams.hidden, module.hparams.likelihood) == (64, "gaussian") and module.model.log_sigma is not None
