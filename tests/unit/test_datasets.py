"""Every dataset source: what loads, and the one-line error for each kind of broken input."""

from __future__ import annotations

import json
import logging
import typing

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import DatasetConfig
from pipeline.data.sources import LOADERS, load_dataset
from pipeline.errors import PipelineError
from tests import datagen as dg

NAMES = dg.class_names(3)


def load(**params) -> object:
    return load_dataset(DatasetConfig(**params))


def error(**params) -> str:
    """The message of the PipelineError loading these params raises; it must be one line."""
    with pytest.raises(PipelineError) as caught:
        load(**params)
    message = str(caught.value)
    assert "\n" not in message
    return message


def expected(channels: int = 1, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    return dg.make_images(channels=channels, **kwargs)


def test_every_configurable_source_has_a_loader():
    sources = typing.get_args(DatasetConfig.model_fields["source"].annotation)
    assert set(LOADERS) == set(sources)


# --- image_folder -------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
def test_image_folder_round_trips_pixels_labels_and_names(tmp_path, channels):
    data = load(source="image_folder", path=str(dg.make_image_folder(tmp_path, channels=channels)))
    images, labels = expected(channels)
    assert data.images.shape == (36, 28, 28, channels)
    np.testing.assert_array_equal(data.images, images)
    np.testing.assert_array_equal(data.labels, labels)
    assert data.class_names == NAMES


def test_image_folder_reads_jpeg_and_bmp(tmp_path):
    jpeg = load(source="image_folder", path=str(dg.make_image_folder(tmp_path / "j", fmt="jpg")))
    bmp = load(source="image_folder", path=str(dg.make_image_folder(tmp_path / "b", fmt="bmp")))
    images, _ = expected()
    np.testing.assert_array_equal(bmp.images, images)
    assert jpeg.images.shape == images.shape
    assert np.abs(jpeg.images.astype(int) - images).mean() < 8  # lossy, but close


def test_image_folder_one_colour_image_makes_all_rgb_unless_channels_set(tmp_path):
    root = dg.make_image_folder(tmp_path)
    first = root / NAMES[0] / f"{NAMES[0]}_000.png"
    dg.save_image(np.full((28, 28, 3), (200, 10, 10), np.uint8), first)
    rgb = load(source="image_folder", path=str(root))
    grey = load(source="image_folder", path=str(root), channels=1)
    assert rgb.images.shape[-1] == 3 and grey.images.shape[-1] == 1
    np.testing.assert_array_equal(rgb.images[0, 0, 0], [200, 10, 10])
    np.testing.assert_array_equal(rgb.images[1:, ..., 0], expected()[0][1:, ..., 0])


def test_image_folder_ignores_hidden_and_other_files(tmp_path):
    root = dg.make_image_folder(tmp_path)
    (root / NAMES[0] / ".DS_Store").write_bytes(b"\0junk")
    (root / NAMES[0] / ".hidden.png").write_bytes(b"junk")
    (root / NAMES[1] / "notes.txt").write_text("not an image")
    (root / ".cache").mkdir()
    (root / "README.png").write_bytes(b"junk")
    data = load(source="image_folder", path=str(root))
    assert len(data) == 36 and data.class_names == NAMES


def test_missing_path_names_the_param_and_path(tmp_path):
    message = error(source="image_folder", path=str(tmp_path / "nowhere"))
    assert "dataset.path" in message and "nowhere" in message


def test_one_class_folder_names_dataset_path(tmp_path):
    dg.make_image_folder(tmp_path / "one", num_classes=1)
    message = error(source="image_folder", path=str(tmp_path / "one"))
    assert "dataset.path" in message and "1 class folder" in message


def test_empty_class_folder_is_named(tmp_path):
    root = dg.make_image_folder(tmp_path)
    (root / "zebra").mkdir()
    assert "zebra" in error(source="image_folder", path=str(root))


def test_corrupt_image_is_named_and_stops_the_load(tmp_path):
    root = dg.make_image_folder(tmp_path)
    bad = dg.corrupt(root / NAMES[1] / f"{NAMES[1]}_003.png")
    message = error(source="image_folder", path=str(root))
    assert str(bad) in message and "dataset.on_error" in message


def test_on_error_skip_leaves_out_corrupt_images_and_reports_them(tmp_path, caplog):
    root = dg.make_image_folder(tmp_path)
    bad = [dg.corrupt(root / NAMES[1] / f"{NAMES[1]}_003.png"), root / NAMES[2] / f"{NAMES[2]}_000.png"]
    bad[1].write_text("not a png")
    with caplog.at_level(logging.WARNING, logger="pipeline.data.sources"):
        data = load(source="image_folder", path=str(root), on_error="skip")
    images, labels = expected()
    keep = np.ones(36, bool)
    keep[[12 + 3, 24]] = False
    np.testing.assert_array_equal(data.images, images[keep])
    np.testing.assert_array_equal(data.labels, labels[keep])
    lines = [record.getMessage() for record in caplog.records]
    assert all(any(str(path) in line for line in lines) for path in bad)
    assert any("skipped 2" in line for line in lines)


def test_a_class_with_only_unreadable_images_is_an_error_even_when_skipping(tmp_path):
    root = dg.make_image_folder(tmp_path, per_class=2)
    for file in (root / NAMES[0]).iterdir():
        file.write_bytes(b"junk")
    assert NAMES[0] in error(source="image_folder", path=str(root), on_error="skip")


def test_mixed_sizes_name_two_files_and_suggest_image_size(tmp_path):
    root = dg.make_image_folder(tmp_path)
    odd = root / NAMES[2] / f"{NAMES[2]}_005.png"
    dg.save_image(np.zeros((32, 30, 1), np.uint8), odd)
    message = error(source="image_folder", path=str(root))
    assert f"{NAMES[0]}_000.png is 28x28" in message and f"{odd} is 32x30" in message
    assert "dataset.image_size" in message
    data = load(source="image_folder", path=str(root), image_size=24)
    assert data.images.shape == (36, 24, 24, 1)


def test_images_out_of_range_need_image_size(tmp_path):
    root = dg.make_image_folder(tmp_path, size=70, per_class=2)
    assert "dataset.image_size" in error(source="image_folder", path=str(root))
    assert load(source="image_folder", path=str(root), image_size=32).images.shape == (6, 32, 32, 1)


# --- parquet ------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["contract", "bytes", "flat", "nested"])
@pytest.mark.parametrize("channels", [1, 3])
def test_parquet_layouts_round_trip(tmp_path, layout, channels):
    path = dg.make_parquet(tmp_path, channels=channels, layout=layout)
    data = load(source="parquet", path=str(path))
    images, labels = expected(channels)
    np.testing.assert_array_equal(data.images, images)
    np.testing.assert_array_equal(data.labels, labels)
    assert data.class_names == (NAMES if layout == "contract" else ("0", "1", "2"))


def test_parquet_string_labels_become_sorted_class_names(tmp_path):
    path = dg.make_parquet(tmp_path, layout="bytes", label_values=["zebra", "ant", "moth"])
    data = load(source="parquet", path=str(path))
    assert data.class_names == ("ant", "moth", "zebra")
    np.testing.assert_array_equal(data.labels, np.repeat([2, 0, 1], 12))


def test_parquet_sparse_integer_labels_are_renumbered(tmp_path):
    path = dg.make_parquet(tmp_path, num_classes=2, layout="flat", label_values=[7, 3])
    data = load(source="parquet", path=str(path))
    assert data.class_names == ("3", "7")
    np.testing.assert_array_equal(data.labels, np.repeat([1, 0], 12))


def _hf_table(images: np.ndarray, labels: list, names: list | None, extra: dict | None = None) -> pa.Table:
    """An HF-style table: struct column `img`, int column `y`, ClassLabel metadata if `names`."""
    struct = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    columns = {
        "img": pa.array([{"bytes": dg.encode(image), "path": None} for image in images], type=struct),
        "y": pa.array(labels, type=pa.int64()),
        **(extra or {}),
    }
    table = pa.table(columns)
    if names is not None:
        features = {"img": {"_type": "Image"}, "y": {"_type": "ClassLabel", "names": names}}
        table = table.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features}})})
    return table


def test_parquet_hf_classlabel_names_and_unused_classes(tmp_path, caplog):
    images, labels = expected()
    path = tmp_path / "hf.parquet"
    pq.write_table(_hf_table(images, (labels * 2).tolist(), ["a", "b", "c", "d", "e"]), path)
    with caplog.at_level(logging.WARNING, logger="pipeline.data.sources"):
        data = load(source="parquet", path=str(path), image_column="img", label_column="y")
    assert data.class_names == ("a", "c", "e")
    np.testing.assert_array_equal(data.labels, labels)
    np.testing.assert_array_equal(data.images, images)
    assert any("b, d" in record.getMessage() for record in caplog.records)


def test_parquet_label_name_column_names_classes(tmp_path):
    images, labels = expected(num_classes=2)
    raw = np.where(labels == 0, 3, 7)
    names = pa.array(np.where(labels == 0, "three", "seven").tolist())
    path = tmp_path / "named.parquet"
    pq.write_table(_hf_table(images, raw.tolist(), None, {"label_name": names}), path)
    data = load(source="parquet", path=str(path), image_column="img", label_column="y")
    assert data.class_names == ("three", "seven")
    np.testing.assert_array_equal(data.labels, labels)


def test_parquet_folder_of_shards_reads_as_one(tmp_path):
    dg.make_parquet(tmp_path / "shards", layout="bytes", name="train-00000.parquet", seed=1)
    dg.make_parquet(tmp_path / "shards", layout="bytes", name="train-00001.parquet", seed=2)
    data = load(source="parquet", path=str(tmp_path / "shards"))
    np.testing.assert_array_equal(data.images, np.concatenate([expected(seed=1)[0], expected(seed=2)[0]]))


@pytest.mark.parametrize("param, column", [("image_column", "img"), ("label_column", "target")])
def test_parquet_missing_column_names_it_and_lists_columns(tmp_path, param, column):
    path = dg.make_parquet(tmp_path, layout="flat")
    message = error(source="parquet", path=str(path), **{param: column})
    assert f"dataset.{param}" in message and repr(column) in message and "image, label" in message


def test_parquet_missing_and_fractional_labels_name_column_and_row(tmp_path):
    images, labels = expected()
    for bad, value, word in [("none", None, "no label"), ("half", 1.5, "1.5")]:
        values = labels.astype(object)
        values[5] = value
        path = tmp_path / f"{bad}.parquet"
        pq.write_table(pa.table({"image": images.reshape(36, -1).tolist(), "label": values.tolist()}), path)
        message = error(source="parquet", path=str(path))
        assert "'label'" in message and "row 5" in message and word in message


def test_parquet_nan_pixels_name_column_and_row(tmp_path):
    pixels = expected()[0].reshape(36, -1) / 255.0
    pixels[7, 3] = np.nan
    path = tmp_path / "nan.parquet"
    pq.write_table(pa.table({"image": pixels.tolist(), "label": expected()[1]}), path)
    message = error(source="parquet", path=str(path))
    assert "'image'" in message and "row 7" in message and "NaN" in message


def test_parquet_corrupt_image_bytes_raise_or_skip(tmp_path):
    images, labels = expected()
    blobs = [dg.encode(image) for image in images]
    blobs[4] = blobs[4][:40]
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"image": pa.array(blobs, pa.binary()), "label": labels}), path)
    assert "row 4" in error(source="parquet", path=str(path))
    data = load(source="parquet", path=str(path), on_error="skip")
    np.testing.assert_array_equal(data.images, np.delete(images, 4, axis=0))
    np.testing.assert_array_equal(data.labels, np.delete(labels, 4))


def test_parquet_mixed_sizes_need_image_size(tmp_path):
    images, labels = expected()
    blobs = [dg.encode(image) for image in images]
    blobs[20] = dg.encode(np.zeros((16, 16, 1), np.uint8))
    path = tmp_path / "mixed.parquet"
    pq.write_table(pa.table({"image": pa.array(blobs, pa.binary()), "label": labels}), path)
    message = error(source="parquet", path=str(path))
    assert "row 0" in message and "row 20" in message and "dataset.image_size" in message
    assert load(source="parquet", path=str(path), image_size=16).images.shape == (36, 16, 16, 1)


def test_not_a_parquet_file_is_named(tmp_path):
    path = tmp_path / "fake.parquet"
    path.write_text("hello")
    message = error(source="parquet", path=str(path))
    assert str(path) in message and "Parquet" in message


# --- csv ----------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
def test_csv_round_trips_kaggle_layout(tmp_path, channels):
    data = load(source="csv", path=str(dg.make_csv(tmp_path, channels=channels)))
    images, labels = expected(channels)
    np.testing.assert_array_equal(data.images, images)
    np.testing.assert_array_equal(data.labels, labels)
    assert data.class_names == ("0", "1", "2")


def test_csv_float_pixels_in_0_1_are_scaled(tmp_path):
    data = load(source="csv", path=str(dg.make_csv(tmp_path, float_pixels=True)))
    np.testing.assert_array_equal(data.images, expected()[0])


def test_csv_string_labels_and_text_columns(tmp_path):
    path = dg.make_csv(tmp_path, label_values=["dog", "cat", "eel"])
    frame = pd.read_csv(path)
    files = pd.DataFrame({"file": [f"img{i}.png" for i in range(len(frame))]})
    pd.concat([files, frame], axis=1).to_csv(path, index=False)
    data = load(source="csv", path=str(path))
    assert data.class_names == ("cat", "dog", "eel")
    np.testing.assert_array_equal(data.images, expected()[0])


def _edit_csv(path, column: str, row: int, value: object) -> None:
    frame = pd.read_csv(path)
    frame[column] = frame[column].astype(object)
    frame.loc[row, column] = value
    frame.to_csv(path, index=False)


@pytest.mark.parametrize(
    "column, value, expected_words",
    [
        ("label", None, ["'label'", "row 4", "no label"]),
        ("label", 2.5, ["'label'", "row 4", "2.5"]),
        ("pixel5", None, ["'pixel5'", "row 4", "empty"]),
        ("pixel5", "oops", ["'pixel5'", "row 4", "oops"]),
        ("pixel5", 300, ["300", "0..255"]),
    ],
)
def test_csv_bad_cells_are_named(tmp_path, column, value, expected_words):
    path = dg.make_csv(tmp_path, size=8)
    _edit_csv(path, column, 4, value)
    message = error(source="csv", path=str(path))
    assert all(word in message for word in expected_words), message


def test_csv_missing_label_column_lists_columns(tmp_path):
    message = error(source="csv", path=str(dg.make_csv(tmp_path, size=8)), label_column="digit")
    assert "dataset.label_column" in message and "'digit'" in message and "label, pixel0" in message


def test_csv_without_header_gets_a_hint(tmp_path):
    path = dg.make_csv(tmp_path, size=8)
    path.write_text("\n".join(path.read_text().splitlines()[1:]) + "\n")
    assert "header" in error(source="csv", path=str(path))


def test_csv_pixel_count_must_be_square(tmp_path):
    path = dg.make_csv(tmp_path, size=8)
    frame = pd.read_csv(path)
    frame.drop(columns=["pixel63"]).to_csv(path, index=False)
    assert "63 pixel" in error(source="csv", path=str(path))


# --- npz ----------------------------------------------------------------------------------


@pytest.mark.parametrize("channels, float_pixels", [(1, False), (1, True), (3, False)])
def test_npz_round_trips(tmp_path, channels, float_pixels):
    path = dg.make_npz(tmp_path, channels=channels, float_pixels=float_pixels)
    data = load(source="npz", path=str(path))
    images, labels = expected(channels)
    np.testing.assert_array_equal(data.images, images)
    np.testing.assert_array_equal(data.labels, labels)


def test_npz_string_labels_channels_first_and_custom_names(tmp_path):
    images, labels = expected(channels=3)
    y = np.array(["b", "c", "a"])[labels]
    np.savez(tmp_path / "keras.npz", x_train=images.transpose(0, 3, 1, 2), y_train=y)
    path = str(tmp_path / "keras.npz")
    data = load(source="npz", path=path, image_column="x_train", label_column="y_train")
    np.testing.assert_array_equal(data.images, images)
    assert data.class_names == ("a", "b", "c")
    np.testing.assert_array_equal(data.labels, np.array([1, 2, 0])[labels])


def test_npz_broken_inputs(tmp_path):
    images, labels = expected(size=8)
    np.savez(tmp_path / "names.npz", images=images, labels=labels)
    message = error(source="npz", path=str(tmp_path / "names.npz"))
    assert "dataset.image_column" in message and "images, labels" in message
    np.savez(tmp_path / "short.npz", x=images, y=labels[:-1])
    assert "differ in length" in error(source="npz", path=str(tmp_path / "short.npz"))
    x = images / 255.0
    x[9, 1, 1] = np.inf
    np.savez(tmp_path / "inf.npz", x=x, y=labels)
    assert "row 9" in error(source="npz", path=str(tmp_path / "inf.npz"))
    np.savez(tmp_path / "obj.npz", x=images, y=np.array(["a", 1] * 18, dtype=object))
    assert "dtype=str" in error(source="npz", path=str(tmp_path / "obj.npz"))
    dg.corrupt(dg.make_npz(tmp_path, size=8, name="cut.npz"))
    assert "cut.npz" in error(source="npz", path=str(tmp_path / "cut.npz"))


# --- idx ----------------------------------------------------------------------------------


@pytest.mark.parametrize("gzip", [True, False])
def test_idx_round_trips(tmp_path, gzip):
    images_path, labels_path = dg.make_idx(tmp_path, gzip=gzip)
    data = load(source="idx", path=str(images_path), labels_path=str(labels_path))
    images, labels = expected()
    np.testing.assert_array_equal(data.images, images)
    np.testing.assert_array_equal(data.labels, labels)


def test_idx_sparse_labels_are_renumbered(tmp_path):
    images_path, labels_path = dg.make_idx(tmp_path, num_classes=2, label_values=[3, 7])
    data = load(source="idx", path=str(images_path), labels_path=str(labels_path))
    assert data.class_names == ("3", "7")
    np.testing.assert_array_equal(data.labels, np.repeat([0, 1], 12))


def test_idx_broken_inputs(tmp_path):
    images_path, labels_path = dg.make_idx(tmp_path, gzip=False)
    assert "dataset.labels_path" in error(source="idx", path=str(images_path))
    other_images, _ = dg.make_idx(tmp_path / "other", per_class=5, gzip=False)
    message = error(source="idx", path=str(other_images), labels_path=str(labels_path))
    assert str(other_images) in message and str(labels_path) in message
    dg.corrupt(images_path)
    message = error(source="idx", path=str(images_path), labels_path=str(labels_path))
    assert str(images_path) in message and "truncated" in message
    labels_path.write_bytes(b"\x08\x08\x08\x08" + labels_path.read_bytes()[4:])
    message = error(source="idx", path=str(other_images), labels_path=str(labels_path))
    assert str(labels_path) in message and "magic" in message
    gz_images, gz_labels = dg.make_idx(tmp_path / "gz")
    dg.corrupt(gz_images)
    assert "gzip" in error(source="idx", path=str(gz_images), labels_path=str(gz_labels))


# --- shared options -----------------------------------------------------------------------


def test_shared_options_apply_to_every_source(tmp_path):
    path = str(dg.make_npz(tmp_path, size=6))
    assert "8x8 to 64x64" in error(source="npz", path=path)
    data = load(source="npz", path=path, image_size=16, channels=3, class_names=["x", "y", "z"])
    assert data.images.shape == (36, 16, 16, 3) and data.class_names == ("x", "y", "z")
    assert "dataset.class_names" in error(source="npz", path=path, image_size=16, class_names=["x", "y"])
