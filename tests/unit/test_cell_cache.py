"""A killed `evaluate` keeps its finished cells: the rerun computes only the rest, with the same bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import Params
from pipeline.evaluation import executors
from pipeline.evaluation.cell_cache import CellCache
from pipeline.stages import evaluate


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def params(tiny_params: Params) -> Params:
    return tiny_params.model_copy(update={"evaluate": tiny_params.evaluate.model_copy(update={"workers": 1, "budget": 2})})


def test_a_rerun_after_a_crash_reuses_finished_cells_and_writes_the_same_bytes(
    params: Params, digits_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_thread
) -> None:
    evaluate.run(params, digits_dir, tmp_path / "whole", show_progress=False, cache_dir=tmp_path / "cache-whole")
    assert not (tmp_path / "cache-whole").exists()  # a finished run leaves no cache behind

    real_task, calls = executors.run_task, []

    def dies_on_the_third(splits, params, task):
        calls.append(task)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the process dies mid-run
        return real_task(splits, params, task)

    monkeypatch.setattr(executors, "run_task", dies_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        evaluate.run(params, digits_dir, tmp_path / "out", show_progress=False, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "out").exists()
    finished = calls[:2]

    calls.clear()
    evaluate.run(params, digits_dir, tmp_path / "out", show_progress=False, cache_dir=tmp_path / "cache")
    assert not set(finished) & set(calls) and len(calls) == 4 - len(finished)  # 2 cells + 2 whole-pool fits in all
    assert files_of(tmp_path / "out") == files_of(tmp_path / "whole")
    assert not (tmp_path / "cache").exists()


def test_the_key_changes_with_params_and_data_but_not_with_the_worker_count(params: Params, digits_dir: Path, tmp_path: Path) -> None:
    from pipeline.data.parquet import read_imageset

    splits = tuple(read_imageset(digits_dir / f"{name}.parquet") for name in ("pool", "val", "test"))
    key = CellCache(tmp_path, splits, params).folder
    more_workers = params.model_copy(update={"evaluate": params.evaluate.model_copy(update={"workers": 2})})
    other_steps = params.model_copy(update={"evaluate": params.evaluate.model_copy(update={"steps": 5})})
    assert CellCache(tmp_path, splits, more_workers).folder == key
    assert CellCache(tmp_path, splits, other_steps).folder != key
    assert CellCache(tmp_path, (splits[0].subset(range(10)), *splits[1:]), params).folder != key
