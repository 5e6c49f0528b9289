"""The README's "read the data with your own tools" snippets, run verbatim on a contract file.

Each snippet is kept here as the exact text the README shows and executed with `exec` from a folder
holding `data/processed/train.parquet`, so a change to the Parquet contract that breaks a reader
fails here before it misleads a user.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from pipeline.data.imageset import ImageSet
from pipeline.data.parquet import write_imageset
from tests import datagen as dg

NAMES = ("circle", "stroke", "blob")

PANDAS = """\
import io

import pandas as pd
from PIL import Image

df = pd.read_parquet("data/processed/train.parquet")
print(df.groupby(["label_name", "source"]).size())
first = Image.open(io.BytesIO(df["image"][0]["bytes"]))  # each image is {"bytes": PNG, "path": None}
print(first.size, df["label_name"][0])
"""

PYARROW = """\
import json

import pyarrow.parquet as pq

table = pq.read_table("data/processed/train.parquet", columns=["label", "label_name", "source"])
meta = json.loads(table.schema.metadata[b"pipeline"])
print(meta["class_names"], meta["image_shape"])  # image_shape is (C, H, W)
features = json.loads(table.schema.metadata[b"huggingface"])["info"]["features"]
"""

DUCKDB = """\
import duckdb

counts = duckdb.sql("SELECT label_name, count(*) FROM 'data/processed/train.parquet' GROUP BY 1 ORDER BY 1")
counts.show()
"""

HF_DATASETS = """\
from datasets import load_dataset

ds = load_dataset("parquet", data_files="data/processed/train.parquet", split="train")
print(ds.features)  # image: Image(), label: ClassLabel(names=[...]), label_name, source
example = ds[0]  # example["image"] is a PIL image
print(example["image"].size, ds.features["label"].int2str(example["label"]))
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ImageSet:
    """A folder laid out like the project, made the working directory; returns what was written."""
    images, labels = dg.make_images(num_classes=3, per_class=4, size=8, channels=3)
    data = ImageSet(images, labels, NAMES)
    write_imageset(tmp_path / "data" / "processed" / "train.parquet", data)
    monkeypatch.chdir(tmp_path)
    return data


def run(snippet: str) -> dict:
    namespace: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(snippet, "<README snippet>", "exec"), namespace)  # noqa: S102 - our own text
    return namespace


def test_pandas_snippet(project: ImageSet) -> None:
    ns = run(PANDAS)
    assert list(ns["df"].columns) == ["image", "label", "label_name", "source"]
    assert ns["first"].size == (8, 8) and ns["first"].mode == "RGB"
    assert ns["df"]["label_name"][0] == NAMES[project.labels[0]]


def test_pyarrow_snippet(project: ImageSet) -> None:
    ns = run(PYARROW)
    assert ns["meta"] == {"class_names": list(NAMES), "image_shape": [3, 8, 8]}
    assert ns["features"]["label"] == {"names": list(NAMES), "_type": "ClassLabel"}
    assert ns["table"].num_rows == len(project)


def test_duckdb_snippet(project: ImageSet) -> None:
    pytest.importorskip("duckdb")
    ns = run(DUCKDB)
    assert ns["counts"].fetchall() == [(name, 4) for name in sorted(NAMES)]


def test_hf_datasets_snippet(project: ImageSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")  # not ~/.cache
    ns = run(HF_DATASETS)
    features = ns["ds"].features
    assert isinstance(features["image"], datasets.Image)
    assert isinstance(features["label"], datasets.ClassLabel) and features["label"].names == list(NAMES)
    assert ns["example"]["image"].size == (8, 8)
    assert features["label"].int2str(ns["example"]["label"]) == NAMES[project.labels[0]]
    assert len(ns["ds"]) == len(project)
