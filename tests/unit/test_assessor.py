"""The quality assessor: trained well enough to be believed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.config import Params
from pipeline.data.parquet import read_imageset
from pipeline.evaluation.assessor import fit_assessor
from pipeline.evaluation.quality import JUDGE_KEY, sample_quality


def test_the_assessor_names_unseen_real_digits_and_says_how_well(digits_dir: Path, tiny_params: Params, one_thread) -> None:
    """Its accuracy on the reference is recorded beside label fidelity: the ceiling fidelity is
    read against. Real images measured as samples score exactly that accuracy."""
    pool = read_imageset(digits_dir / "pool.parquet")
    order = np.random.default_rng(0).permutation(len(pool))
    train, reference = pool.subset(np.sort(order[0::2])), pool.subset(np.sort(order[1::2]))
    cfg = tiny_params.evaluate.model_copy(update={"steps": 20, "classic_copies": 2})
    assessor = fit_assessor(train, cfg, tiny_params.trainer, seed=0)
    quality = sample_quality(reference, train, reference, assessor, seed=0, per_class=False)
    assert quality[JUDGE_KEY] > 0.8  # 120 steps on ~50 digits per class; chance is 0.1
    assert quality["label_fidelity"] == quality[JUDGE_KEY]


def test_the_run_assessor_trains_once_on_val_and_serves_every_cell(digits_dir: Path, tiny_params: Params, one_thread, monkeypatch) -> None:
    """One judge per run: fitted on the first call (on val, never a cell's images), reused by the
    cells after it; other val images are another run's judge."""
    from pipeline.evaluation import assessor as assessor_module

    val = read_imageset(digits_dir / "val.parquet")
    cfg = tiny_params.evaluate.model_copy(update={"steps": 5, "classic_copies": 1})
    fitted: list[int] = []
    fit = assessor_module.fit_assessor

    def spy(images, *args, **kwargs):
        fitted.append(len(images))
        return fit(images, *args, **kwargs)

    monkeypatch.setattr(assessor_module, "fit_assessor", spy)
    monkeypatch.setattr(assessor_module, "_RUN_ASSESSORS", {})
    first = assessor_module.run_assessor(val, cfg, tiny_params.trainer, seed=0)
    assert assessor_module.run_assessor(val, cfg, tiny_params.trainer, seed=0) is first
    assert fitted == [len(val)]
    other = assessor_module.run_assessor(val.subset(np.arange(len(val) // 2)), cfg, tiny_params.trainer, seed=0)
    assert other is not first and fitted == [len(val), len(val) // 2]
