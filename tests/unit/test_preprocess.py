from collections import Counter
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import parse_params
from pipeline.errors import PipelineError
from pipeline.data.parquet import read_imageset
from pipeline.data.sources import load_dataset
from pipeline.stages.preprocess import run
from pipeline.data.splits import per_class_subset


def test_default_digits_split(tmp_path: Path) -> None:
    summary = run(parse_params({}), tmp_path, tmp_path / "data.json")
    assert summary["rows"] == {"train": 100, "val": 360, "test": 360, "pool": 1077}
    train, val, test, pool = (read_imageset(tmp_path / f"{s}.parquet") for s in ("train", "val", "test", "pool"))
    assert train.images.shape[1:] == (8, 8, 1) and train.images.dtype == np.uint8
    assert train.class_counts().tolist() == [10] * 10
    # test, val and the pool partition the dataset: no row in two of them, every row in one
    rows = lambda s: Counter(img.tobytes() + bytes([lab]) for img, lab in zip(s.images, s.labels))  # noqa: E731
    parts = {"test": rows(test), "val": rows(val), "pool": rows(pool)}
    for (a, rows_a), (b, rows_b) in combinations(parts.items(), 2):
        assert not rows_a & rows_b, f"{a} and {b} share rows"
    assert parts["test"] + parts["val"] + parts["pool"] == rows(load_dataset(parse_params({}).dataset))
    assert rows(train) <= parts["pool"]  # train is drawn from the pool only
    # stratified: every class in every split, in about the same share
    assert (test.class_counts() >= 30).all() and (val.class_counts() >= 30).all()


def test_same_params_same_bytes(tmp_path: Path) -> None:
    run(parse_params({}), tmp_path / "a")
    run(parse_params({}), tmp_path / "b")
    for split in ("train", "val", "test", "pool"):
        assert (tmp_path / "a" / f"{split}.parquet").read_bytes() == (tmp_path / "b" / f"{split}.parquet").read_bytes()


def test_too_few_images_per_class_names_the_param(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="dataset.train_per_class: class '0' has only"):
        run(parse_params({"dataset": {"train_per_class": 500}}), tmp_path)
    assert not list(tmp_path.glob("*.parquet"))


def test_subsets_are_nested_across_sizes() -> None:
    labels = np.repeat(np.arange(4), 30)
    names = tuple("abcd")
    small = per_class_subset(labels, 5, seed=3, class_names=names, what="x")
    large = per_class_subset(labels, 10, seed=3, class_names=names, what="x")
    assert set(small) < set(large)
    assert np.bincount(labels[large]).tolist() == [10] * 4
    other_seed = per_class_subset(labels, 5, seed=4, class_names=names, what="x")
    assert set(other_seed) != set(small)
