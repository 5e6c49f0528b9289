"""Shared by the Ray tests: tiny digits on disk and the `processes` executor's outputs, which
every Ray setup must reproduce byte for byte."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import pytest

from pipeline.config import Params, parse_params
from pipeline.stages.evaluate import run as evaluate
from pipeline.stages.preprocess import run as preprocess

# 1 size x 2 seeds: two cells and two whole-pool fits, seconds each.
TINY = {
    "dataset": {"train_per_class": 5},
    "trainer": {"progress_bar": False, "num_threads": 1},
    "vae": {"epochs": 3, "val_every_n_epochs": 1, "early_stopping_patience": 0, "sample_every_n_epochs": 2, "hidden_channels": 8, "latent_dim": 4},
    "generate": {"batch_size": 16},
    "evaluate": {"seeds": [0, 1], "train_sizes": [3], "steps": 3, "classic_copies": 1, "budget": 2, "workers": 1},
}
OUTPUTS = ("metrics.json", "evaluation.json", "plots/learning_curve.csv", "plots/gains.csv", "plots/results.csv")
OBJECT_STORE = 80 * 2**20  # bytes: the tiny splits need little; Ray's default is 30% of memory


def tiny_params(**evaluate: object) -> Params:
    raw = copy.deepcopy(TINY)
    raw["evaluate"].update(evaluate)
    return parse_params(raw)


def digests(reports: Path) -> dict[str, str]:
    return {name: hashlib.sha256((reports / name).read_bytes()).hexdigest() for name in OUTPUTS}


@pytest.fixture(scope="session")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cluster-digits")
    preprocess(tiny_params(), out)
    return out


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory, digits: Path) -> dict[str, str]:
    """The outputs' digests under `executor: processes` (one worker: the cells in this process)."""
    reports = tmp_path_factory.mktemp("reference")
    evaluate(tiny_params(), digits, reports, show_progress=False)
    return digests(reports)
