"""The "read it with your own tools" snippets of docs/parquet.md, run as the page shows them.

Each ```python block of the page is read from the page itself and executed with `exec` from a
folder holding `data/processed/train.parquet`, so a change to the Parquet contract that breaks a
reader, or an edit to a snippet that breaks it, fails here before it misleads a user.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from pipeline.data.imageset import ImageSet
from pipeline.data.parquet import write_imageset
from tests import datagen as dg

NAMES = ("circle", "stroke", "blob")
PAGE = Path(__file__).resolve().parents[2] / "docs" / "parquet.md"


def snippet(library: str) -> str:
    """The page's one ```python block that imports `library` (`import x` or `from x import ...`)."""
    blocks = re.findall(r"^```python\n(.*?)^```$", PAGE.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)
    found = [b for b in blocks if re.search(rf"^(import|from) {re.escape(library)}\b", b, re.MULTILINE)]
    assert len(found) == 1, f"{PAGE.name}: expected one python snippet importing {library}, found {len(found)}"
    return found[0]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ImageSet:
    """A folder laid out like the project, made the working directory; returns what was written."""
    images, labels = dg.make_images(num_classes=3, per_class=4, size=8, channels=3)
    data = ImageSet(images, labels, NAMES)
    write_imageset(tmp_path / "data" / "processed" / "train.parquet", data)
    monkeypatch.chdir(tmp_path)
    return data


def run(code: str) -> dict:
    namespace: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(code, f"<{PAGE.name} snippet>", "exec"), namespace)  # noqa: S102 - our own text
    return namespace


def test_pandas_snippet(project: ImageSet) -> None:
    ns = run(snippet("pandas"))
    assert list(ns["df"].columns) == ["image", "label", "label_name", "source"]
    assert ns["first"].size == (8, 8) and ns["first"].mode == "RGB"
    assert ns["df"]["label_name"][0] == NAMES[project.labels[0]]


def test_pyarrow_snippet(project: ImageSet) -> None:
    ns = run(snippet("pyarrow"))
    assert ns["meta"] == {"class_names": list(NAMES), "image_shape": [3, 8, 8]}
    assert ns["features"]["label"] == {"names": list(NAMES), "_type": "ClassLabel"}
    assert ns["table"].num_rows == len(project)


def test_duckdb_snippet(project: ImageSet) -> None:
    pytest.importorskip("duckdb")
    ns = run(snippet("duckdb"))
    assert ns["counts"].fetchall() == [(name, 4) for name in sorted(NAMES)]


def test_hf_datasets_snippet(project: ImageSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")  # not ~/.cache
    ns = run(snippet("datasets"))
    features = ns["ds"].features
    assert isinstance(features["image"], datasets.Image)
    assert isinstance(features["label"], datasets.ClassLabel) and features["label"].names == list(NAMES)
    assert ns["example"]["image"].size == (8, 8)
    assert features["label"].int2str(ns["example"]["label"]) == NAMES[project.labels[0]]
    assert len(ns["ds"]) == len(project)
