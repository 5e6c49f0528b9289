"""Small shared fixtures: tiny params and a few digits on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pipeline.config import Params, parse_params
from pipeline.stages.preprocess import run as preprocess

TINY = {
    "dataset": {"train_per_class": 5},
    "trainer": {"progress_bar": False},
    "vae": {"epochs": 4, "val_every_n_epochs": 1, "early_stopping_patience": 0, "sample_every_n_epochs": 2, "hidden_channels": 8, "latent_dim": 4},
    "generate": {"batch_size": 16},
    "evaluate": {"seeds": [0, 1], "train_sizes": [3], "steps": 3, "classic_copies": 1},
}


@pytest.fixture(scope="session")
def tiny_params() -> Params:
    return parse_params(TINY)


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory: pytest.TempPathFactory, tiny_params: Params) -> Path:
    out = tmp_path_factory.mktemp("processed")
    preprocess(tiny_params, out)
    return out


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models gain nothing from a second thread, and on a busy machine lose a lot to it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
