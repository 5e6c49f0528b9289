"""Property tests: any size, channel count, label set or damaged file either loads correctly or
raises a one-line PipelineError, never another exception."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import DatasetConfig
from pipeline.data.sources import load_dataset
from pipeline.errors import PipelineError
from pipeline.data.imageset import ImageSet
from tests import datagen as dg

PROPERTY = settings(
    max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


@dataclass(frozen=True)
class Case:
    size: int
    channels: int
    per_class: int
    values: tuple  # the label written for each class, in generation order
    corruption: str | None
    on_error: str
    image_size: int | None
    seed: int

    @property
    def num_classes(self) -> int:
        return len(self.values)

    @property
    def valid(self) -> bool:
        """Whether the undamaged data must load: 2+ classes and a size the pipeline takes."""
        return self.num_classes >= 2 and (self.image_size is not None or 8 <= self.size <= 64)

    def generate(self, **overrides) -> dict:
        kwargs = {
            "num_classes": self.num_classes, "per_class": self.per_class, "size": self.size,
            "channels": self.channels, "seed": self.seed,
        }
        return kwargs | overrides


def weighted(choices: dict) -> st.SearchStrategy:
    """One of the keys, each about as often as its weight; hypothesis favours the first key."""
    pool = [value for value, weight in choices.items() for _ in range(weight)]
    return st.integers(0, len(pool) - 1).map(pool.__getitem__)


@st.composite
def cases(draw, strings: bool = True) -> Case:
    num_classes = draw(weighted({3: 3, 2: 3, 4: 2, 1: 1}))
    kind = draw(st.sampled_from(["index", "sparse", "string"] if strings else ["index", "sparse"]))
    if kind == "index":
        values = tuple(range(num_classes))
    elif kind == "sparse":
        ids = st.lists(st.integers(0, 255), min_size=num_classes, max_size=num_classes, unique=True)
        values = tuple(draw(ids))
    else:
        names = st.text("abcxyzAB019_", max_size=4).map(lambda s: "c" + s)
        values = tuple(draw(st.lists(names, min_size=num_classes, max_size=num_classes, unique=True)))
    return Case(
        size=draw(weighted({28: 2, 8: 2, 13: 2, 20: 2, 66: 1, 5: 1})),
        channels=draw(st.sampled_from([1, 3])),
        per_class=draw(st.integers(1, 3)),
        values=values,
        corruption=draw(weighted({None: 6, "truncate": 2, "garble": 2})),
        on_error=draw(st.sampled_from(["raise", "skip"])),
        image_size=draw(weighted({None: 3, 16: 1})),
        seed=draw(st.integers(0, 2**16)),
    )


def expected(case: Case, row_order: bool = True) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """The images, labels and class names a loader must return for undamaged data.

    Class names sort as strings, or as numbers for integer labels read from files; an image
    folder (row_order False) lists classes in folder-name order, so its images are regrouped.
    """
    images, generated = dg.make_images(**case.generate())
    numeric = row_order and all(isinstance(v, int) for v in case.values)
    order = sorted(case.values, key=None if numeric else str)
    names = tuple(str(v) for v in order)
    rank = np.array([order.index(v) for v in case.values])
    labels = rank[generated]
    if not row_order:
        regroup = np.argsort(labels, kind="stable")
        images, labels = images[regroup], labels[regroup]
    return images, labels, names


def check(params: dict, case: Case, row_order: bool = True, names: tuple[str, ...] | None = None) -> None:
    cfg = DatasetConfig(on_error=case.on_error, image_size=case.image_size, **params)
    try:
        data = load_dataset(cfg)
    except PipelineError as err:
        assert "\n" not in str(err)
        assert case.corruption or not case.valid, f"valid data refused: {err}"
        return
    assert isinstance(data, ImageSet) and data.images.dtype == np.uint8
    assert 8 <= data.images.shape[1] <= 64 and data.images.shape[-1] in (1, 3)
    if case.corruption:
        return
    images, labels, expected_names = expected(case, row_order)
    assert data.class_names == (names or expected_names)
    np.testing.assert_array_equal(data.labels, labels)
    if case.image_size is None:
        np.testing.assert_array_equal(data.images, images)
    else:
        assert data.images.shape == (len(images), case.image_size, case.image_size, case.channels)


def damage(path: Path, case: Case) -> None:
    if case.corruption:
        dg.corrupt(path, case.corruption, case.seed)


@PROPERTY
@given(case=cases(), fmt=st.sampled_from(["png", "bmp"]))
def test_image_folder_loads_or_explains(case, fmt):
    with tempfile.TemporaryDirectory() as tmp:
        names = [str(v) for v in case.values]
        root = dg.make_image_folder(tmp, fmt=fmt, names=names, **case.generate())
        files = sorted(root.rglob(f"*.{fmt}"))
        damage(files[case.seed % len(files)], case)
        check({"source": "image_folder", "path": str(root)}, case, row_order=False)


@PROPERTY
@given(case=cases(), layout=st.sampled_from(["contract", "bytes", "flat", "nested"]), in_row=st.booleans())
def test_parquet_loads_or_explains(case, layout, in_row):
    with tempfile.TemporaryDirectory() as tmp:
        path = dg.make_parquet(tmp, layout=layout, label_values=list(case.values), **case.generate())
        if case.corruption and in_row and layout == "bytes":
            _damage_one_image(path, case)
        else:
            damage(path, case)
        names = dg.class_names(case.num_classes) if layout == "contract" else None
        if layout == "contract":
            case = replace(case, values=tuple(range(case.num_classes)))
        check({"source": "parquet", "path": str(path)}, case, names=names)


def _damage_one_image(path: Path, case: Case) -> None:
    table = pq.read_table(path)
    blobs = table.column("image").to_pylist()
    row = case.seed % len(blobs)
    blobs[row] = blobs[row][: len(blobs[row]) // 2] if case.corruption == "truncate" else b"\x89PNG garbled"
    pq.write_table(table.set_column(0, "image", pa.array(blobs, pa.binary())), path)


@PROPERTY
@given(case=cases(), float_pixels=st.booleans())
def test_csv_loads_or_explains(case, float_pixels):
    with tempfile.TemporaryDirectory() as tmp:
        path = dg.make_csv(tmp, label_values=case.values, float_pixels=float_pixels, **case.generate())
        damage(path, case)
        check({"source": "csv", "path": str(path)}, case)


@PROPERTY
@given(case=cases(), float_pixels=st.booleans())
def test_npz_loads_or_explains(case, float_pixels):
    with tempfile.TemporaryDirectory() as tmp:
        path = dg.make_npz(tmp, label_values=case.values, float_pixels=float_pixels, **case.generate())
        damage(path, case)
        check({"source": "npz", "path": str(path)}, case)


@PROPERTY
@given(case=cases(strings=False), gzip=st.booleans(), damaged=st.sampled_from(["images", "labels"]))
def test_idx_loads_or_explains(case, gzip, damaged):
    case = replace(case, channels=1)
    with tempfile.TemporaryDirectory() as tmp:
        images_path, labels_path = dg.make_idx(
            tmp, case.num_classes, case.per_class, case.size, case.seed, gzip, list(case.values)
        )
        damage(images_path if damaged == "images" else labels_path, case)
        check({"source": "idx", "path": str(images_path), "labels_path": str(labels_path)}, case)
