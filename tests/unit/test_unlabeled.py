"""Unlabeled data in the DAG: `preprocess` writes `unlabeled.parquet` (null labels) from the pool
or from `dataset.unlabeled_path`, always (0 rows when there is none), with the labeled sources'
error rules."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.config import parse_params
from pipeline.data.parquet import read_imageset, read_unlabeled
from pipeline.errors import PipelineError
from pipeline.stages.preprocess import main, run
from tests import datagen as dg


def rows(images: np.ndarray) -> Counter:
    return Counter(image.tobytes() for image in images)


def test_default_run_writes_an_empty_unlabeled_file_and_the_same_summary(tmp_path: Path) -> None:
    summary = run(parse_params({}), tmp_path)
    assert "unlabeled" not in summary["rows"]  # reports/data.json of the default run is unchanged
    table = pq.read_table(tmp_path / "unlabeled.parquet")
    assert table.num_rows == 0
    assert table.schema.names == pq.read_schema(tmp_path / "train.parquet").names
    assert read_unlabeled(tmp_path / "unlabeled.parquet").shape == (0, 8, 8, 1)


def test_pool_images_outside_train_lose_their_labels(tmp_path: Path) -> None:
    summary = run(parse_params({"dataset": {"unlabeled_per_class": 7}}), tmp_path)
    assert summary["rows"]["unlabeled"] == 70
    table = pq.read_table(tmp_path / "unlabeled.parquet")
    assert table.column("label").null_count == table.column("label_name").null_count == 70
    assert set(table.column("source").to_pylist()) == {"unlabeled"}
    unlabeled = read_unlabeled(tmp_path / "unlabeled.parquet")
    train, pool = read_imageset(tmp_path / "train.parquet"), read_imageset(tmp_path / "pool.parquet")
    # drawn from the pool, and none of them is a training row (counted with multiplicity)
    assert rows(unlabeled) + rows(train.images) <= rows(pool.images)
    with pytest.raises(PipelineError, match="read_unlabeled"):
        read_imageset(tmp_path / "unlabeled.parquet")


def test_null_takes_the_whole_pool_outside_train(tmp_path: Path) -> None:
    summary = run(parse_params({"dataset": {"unlabeled_per_class": None}}), tmp_path)
    assert summary["rows"]["unlabeled"] == summary["rows"]["pool"] - summary["rows"]["train"]


def flat_folder(root: Path, size: int = 8, count: int = 9) -> Path:
    images, _ = dg.make_images(3, count // 3, size)
    root.mkdir(parents=True)
    for i, image in enumerate(images):
        dg.save_image(image, root / f"img_{i:03d}.png")
    return root


@pytest.mark.parametrize("kind", ["folder", "npz", "parquet"])
def test_unlabeled_path_is_read_like_the_labeled_sources(tmp_path: Path, kind: str) -> None:
    if kind == "folder":
        path = flat_folder(tmp_path / "extra")
    elif kind == "npz":
        images, _ = dg.make_images(3, 3, 8)
        path = tmp_path / "extra.npz"
        np.savez(path, x=images[..., 0])  # images only, no labels
    else:
        path = dg.make_parquet(tmp_path, 3, 3, 8, layout="bytes")  # its label column is ignored
    run(parse_params({"dataset": {"unlabeled_path": str(path)}}), tmp_path / "out")
    unlabeled = read_unlabeled(tmp_path / "out" / "unlabeled.parquet")
    assert rows(unlabeled) == rows(dg.make_images(3, 3, 8)[0])


def cli_error(tmp_path: Path, capsys, dataset: dict) -> str:
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"dataset": dataset}))
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as stop:
        main(["--params", str(params), "--out-dir", str(out), "--summary", str(tmp_path / "data.json")])
    assert stop.value.code == 2
    assert not out.exists() or not list(out.iterdir())  # nothing half-written
    assert not (tmp_path / "data.json").exists()
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


def test_broken_unlabeled_input_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    assert "not found" in cli_error(tmp_path, capsys, {"unlabeled_path": str(tmp_path / "missing")})
    (tmp_path / "empty").mkdir()
    assert "empty folder" in cli_error(tmp_path, capsys, {"unlabeled_path": str(tmp_path / "empty")})
    big = flat_folder(tmp_path / "big", size=12)
    assert "dataset.image_size" in cli_error(tmp_path, capsys, {"unlabeled_path": str(big)})
    broken = flat_folder(tmp_path / "broken")
    bad = dg.corrupt(broken / "img_004.png")
    assert str(bad) in cli_error(tmp_path, capsys, {"unlabeled_path": str(broken)})
    both = cli_error(tmp_path, capsys, {"unlabeled_path": str(broken), "unlabeled_per_class": 3})
    assert "dataset: unlabeled_per_class" in both


def test_image_size_resizes_unlabeled_images_too(tmp_path: Path) -> None:
    big = flat_folder(tmp_path / "big", size=12)
    run(parse_params({"dataset": {"unlabeled_path": str(big), "image_size": 8}}), tmp_path / "out")
    assert read_unlabeled(tmp_path / "out" / "unlabeled.parquet").shape == (9, 8, 8, 1)
