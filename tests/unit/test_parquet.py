import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.atomic import atomic_path
from pipeline.errors import PipelineError
from pipeline.data.imageset import ImageSet
from pipeline.data.images import decode_image as decode_png
from pipeline.data.images import encode_png
from pipeline.data.parquet import ImageParquetWriter, read_imageset, write_imageset


def sample(n: int = 12, channels: int = 1, size: int = 8) -> ImageSet:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, size, size, channels), dtype=np.uint8)
    return ImageSet(images, np.arange(n, dtype=np.int64) % 3, ("a", "b", "c"))


@pytest.mark.parametrize("channels", [1, 3])
def test_png_round_trip_is_lossless(channels: int) -> None:
    image = sample(1, channels).images[0]
    assert np.array_equal(decode_png(encode_png(image)), image)


def test_real_file_follows_the_contract(tmp_path: Path) -> None:
    data = sample()
    path = tmp_path / "train.parquet"
    write_imageset(path, data)
    schema = pq.read_schema(path)
    assert str(schema.field("image").type) == "struct<bytes: binary, path: string>"
    assert str(schema.field("label").type) == "int64"
    hf = json.loads(schema.metadata[b"huggingface"])["info"]["features"]
    assert hf["image"] == {"_type": "Image"}
    assert hf["label"] == {"names": ["a", "b", "c"], "_type": "ClassLabel"}
    table = pq.read_table(path).to_pydict()
    assert set(table["source"]) == {"real"}
    assert table["label_name"][:3] == ["a", "b", "c"]
    assert all(item["path"] is None for item in table["image"])
    back = read_imageset(path)
    assert np.array_equal(back.images, data.images)
    assert np.array_equal(back.labels, data.labels)
    assert back.class_names == data.class_names


def test_synthetic_file_carries_provenance(tmp_path: Path) -> None:
    data = sample(6, channels=3)
    path = tmp_path / "syn.parquet"
    with ImageParquetWriter(path, data.class_names, data.image_shape, synthetic=True) as writer:
        writer.write(data.images, data.labels, {
            "checkpoint": "abc", "strategy": "prior", "temperature": 0.8, "seed": 3,
            "confidence": np.linspace(0, 1, 6), "nn_distance": np.ones(6),
        })
    table = pq.read_table(path).to_pydict()
    assert set(table["source"]) == {"synthetic"}
    assert set(table["checkpoint"]) == {"abc"} and set(table["temperature"]) == {0.8}
    assert table["confidence"][-1] == 1.0


def test_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    data = sample()
    path = tmp_path / "out.parquet"
    with pytest.raises(RuntimeError):
        with ImageParquetWriter(path, data.class_names, data.image_shape) as writer:
            writer.write(data.images, data.labels)
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "report.md"
    target.write_text("old")
    with pytest.raises(ValueError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise ValueError
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]


def test_reading_a_missing_or_foreign_file_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="file not found"):
        read_imageset(tmp_path / "nope.parquet")
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet")
    with pytest.raises(PipelineError, match="junk.parquet"):
        read_imageset(junk)
