"""Conditioning works: a classifier trained on real digits recognises the class a sample was
generated for, far above chance, for every sampling strategy."""

from pathlib import Path

import numpy as np
import pytest

from pipeline.models.classify import TrainingRows, fit_classifier
from pipeline.config import parse_params
from pipeline.data.imageset import ImageSet
from pipeline.data.parquet import read_imageset
from pipeline.stages.preprocess import run as preprocess
from pipeline.models.sampling import generate
from pipeline.stages.train_vae import fit_cvae

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("strategy", ["prior", "posterior", "interpolate", "borrow"])
def test_generated_digits_are_recognised_as_their_class(tmp_path: Path, strategy: str) -> None:
    params = parse_params({
        "trainer": {"progress_bar": False},
        "vae": {"epochs": 60, "early_stopping_patience": 0},
        "generate": {"per_class": 20, "ratio": None, "strategy": strategy, "temperature": 1.0, "min_confidence": 0.0},
    })
    preprocess(params, tmp_path)
    train, val = read_imageset(tmp_path / "train.parquet"), read_imageset(tmp_path / "val.parquet")
    module, _ = fit_cvae(train, val, params.vae, params.trainer, seed=0, progress_bar=False)
    batches = list(generate(module.model, train, params.generate, seed=0))
    samples = ImageSet(np.concatenate([b.images for b in batches]), np.concatenate([b.labels for b in batches]), train.class_names)
    judge = fit_classifier(TrainingRows.of(train), params.evaluate, params.trainer, seed=0)
    fidelity = float((judge.predict(samples.as_float()) == samples.labels).mean())
    assert fidelity > 0.7  # chance is 0.1
