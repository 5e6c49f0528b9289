"""The Parquet contract every dataset file of the pipeline follows.

Columns: `image` (struct {bytes: PNG, path: null}, Hugging Face's `Image` feature), `label`
(int64, a `ClassLabel`), `label_name` (string) and `source` (`real` | `synthetic` |
`unlabeled`); synthetic files add provenance columns. Unlabeled files (`unlabeled.parquet`) keep
the same columns with `label` and `label_name` null, so one schema serves every file. The `huggingface` schema metadata makes `datasets` decode images
and class names; the `pipeline` metadata keeps class names and image shape for our own readers.
Arrow types are spelled out because `datasets` applies its features only on an exact match.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.atomic import atomic_path
from pipeline.data.images import SizeLimits, UnreadableImage, decode_image, encode_png
from pipeline.data.imageset import ImageSet
from pipeline.errors import PipelineError

IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
BASE_FIELDS = [
    pa.field("image", IMAGE_TYPE),
    pa.field("label", pa.int64()),
    pa.field("label_name", pa.string()),
    pa.field("source", pa.string()),
]
# Where each synthetic row came from, so a sample can be traced to its model and settings.
PROVENANCE_FIELDS = [
    pa.field("checkpoint", pa.string()),
    pa.field("strategy", pa.string()),
    pa.field("temperature", pa.float64()),
    pa.field("seed", pa.int64()),
    pa.field("confidence", pa.float64()),
    pa.field("nn_distance", pa.float64()),
]
_HF_DTYPES = {pa.string(): "string", pa.float64(): "float64", pa.int64(): "int64", pa.bool_(): "bool"}
ROW_GROUP_SIZE = 4096


def make_schema(
    class_names: tuple[str, ...],
    image_shape: tuple[int, int, int],
    synthetic: bool,
    extra_fields: Sequence[pa.Field] = (),
    label_fields: Sequence[str] = (),
) -> pa.Schema:
    """The contract's schema; `extra_fields` follow the contract's columns (e.g. an audit's
    results), and those named in `label_fields` hold class indices: `ClassLabel`s like `label`."""
    fields = BASE_FIELDS + (PROVENANCE_FIELDS if synthetic else []) + list(extra_fields)
    class_label = {"names": list(class_names), "_type": "ClassLabel"}
    hf_features: dict[str, dict] = {"image": {"_type": "Image"}, "label": class_label}
    for field in fields[2:]:
        hf_features[field.name] = class_label if field.name in label_fields else {"dtype": _HF_DTYPES[field.type], "_type": "Value"}
    metadata = {
        "huggingface": json.dumps({"info": {"features": hf_features}}),
        "pipeline": json.dumps({"class_names": list(class_names), "image_shape": list(image_shape)}),
    }
    return pa.schema(fields, metadata=metadata)


class ImageParquetWriter:
    """Streams batches of images into one Parquet file, renamed into place on success.

    Memory stays bounded by one batch, whatever the total row count.
    """

    def __init__(
        self,
        path: str | Path,
        class_names: tuple[str, ...],
        image_shape: tuple[int, int, int],
        synthetic: bool = False,
        extra_fields: Sequence[pa.Field] = (),
        label_fields: Sequence[str] = (),
        unlabeled: bool = False,
    ) -> None:
        self.path = Path(path)
        self.source = "synthetic" if synthetic else "unlabeled" if unlabeled else "real"
        self.class_names = tuple(class_names)
        self.schema = make_schema(self.class_names, image_shape, synthetic, extra_fields, label_fields)
        self.synthetic = synthetic
        self.added_fields = (PROVENANCE_FIELDS if synthetic else []) + list(extra_fields)
        self.rows = 0
        self._stack = ExitStack()

    def __enter__(self) -> ImageParquetWriter:
        tmp = self._stack.enter_context(atomic_path(self.path))
        self._writer = self._stack.enter_context(pq.ParquetWriter(tmp, self.schema))
        return self

    def __exit__(self, *exc) -> bool:
        return self._stack.__exit__(*exc)

    def write(
        self, images: np.ndarray, labels: np.ndarray | None, extra: Mapping[str, object] | None = None
    ) -> None:
        """images (N, H, W, C) uint8; `labels` None writes null labels (unlabeled rows); `extra`
        maps each column beyond the contract's own (the provenance of synthetic rows, the
        writer's `extra_fields`) to a scalar or an array."""
        n = len(images)
        columns = {
            "image": pa.array(
                [{"bytes": encode_png(img), "path": None} for img in images], type=IMAGE_TYPE
            ),
            "label": pa.array(np.asarray(labels, dtype=np.int64)) if labels is not None else pa.nulls(n, pa.int64()),
            "label_name": pa.array([None] * n if labels is None else [self.class_names[i] for i in labels], type=pa.string()),
            "source": pa.array([self.source] * n, type=pa.string()),
        }
        for field in self.added_fields:
            value = (extra or {})[field.name]
            values = value if isinstance(value, np.ndarray) else [value] * n
            columns[field.name] = pa.array(values, type=field.type)
        table = pa.table(columns, schema=self.schema)
        self._writer.write_table(table, row_group_size=ROW_GROUP_SIZE)
        self.rows += n


def write_imageset(path: str | Path, data: ImageSet, batch_size: int = ROW_GROUP_SIZE) -> None:
    """Write real images (a whole split) under the contract."""
    _, h, w, c = data.images.shape
    with ImageParquetWriter(path, data.class_names, (c, h, w)) as writer:
        for start in range(0, max(len(data), 1), batch_size):
            writer.write(data.images[start : start + batch_size], data.labels[start : start + batch_size])


def write_unlabeled(
    path: str | Path, images: np.ndarray, class_names: tuple[str, ...], batch_size: int = ROW_GROUP_SIZE
) -> None:
    """Write images without labels under the contract (null labels, source `unlabeled`). Zero
    rows is a valid file: DVC needs the declared output even when a run has no unlabeled data."""
    _, h, w, c = images.shape
    with ImageParquetWriter(path, class_names, (c, h, w), unlabeled=True) as writer:
        for start in range(0, max(len(images), 1), batch_size):
            writer.write(images[start : start + batch_size], None)


def read_unlabeled(path: str | Path) -> np.ndarray:
    """The (N, H, W, C) uint8 images of an unlabeled contract file (N may be 0)."""
    meta = read_metadata(path)
    c, h, w = meta["image_shape"]
    images = [
        decode_stored(item["bytes"], c, path)
        for batch in iter_batches(path, columns=["image"])
        for item in batch.column("image").to_pylist()
    ]
    return np.stack(images) if images else np.zeros((0, h, w, c), np.uint8)


def read_metadata(path: str | Path) -> dict:
    """The `pipeline` schema metadata: class names and image shape."""
    schema = _read_schema(path)
    raw = (schema.metadata or {}).get(b"pipeline")
    if raw is None:
        raise PipelineError(f"{path}: not a pipeline Parquet file (no 'pipeline' schema metadata)")
    return json.loads(raw)


def _read_schema(path: str | Path) -> pa.Schema:
    path = Path(path)
    if not path.exists():
        raise PipelineError(f"{path}: file not found (run the stage that writes it first)")
    try:
        return pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise PipelineError(f"{path}: not a readable Parquet file ({err})") from None


def iter_batches(
    path: str | Path, columns: list[str] | None = None, batch_size: int = ROW_GROUP_SIZE
) -> Iterator[pa.RecordBatch]:
    _read_schema(path)
    yield from pq.ParquetFile(path).iter_batches(batch_size=batch_size, columns=columns)


def read_imageset(path: str | Path) -> ImageSet:
    """Decode a contract file into memory once; stages then work on arrays, not PNGs."""
    meta = read_metadata(path)
    class_names = tuple(meta["class_names"])
    c, h, w = meta["image_shape"]
    limits = SizeLimits(max(1, h * w), max(h, w) / max(1, min(h, w)))  # the shape the file declares
    images, labels = [], []
    for batch in iter_batches(path, columns=["image", "label"]):
        images.extend(decode_stored(item["bytes"], c, path, limits) for item in batch.column("image").to_pylist())
        if batch.column("label").null_count:
            raise PipelineError(f"{path}: rows without labels; an unlabeled file is read with read_unlabeled")
        labels.append(batch.column("label").to_numpy())
    stacked = np.stack(images) if images else np.zeros((0, h, w, c), np.uint8)
    return ImageSet(stacked, np.concatenate(labels).astype(np.int64) if labels else np.zeros(0, np.int64), class_names)


def decode_stored(
    data: bytes, channels: int, path: str | Path, limits: SizeLimits | None = None
) -> np.ndarray:
    """One image of a contract file; a corrupt one names the file instead of a Pillow traceback.

    The pipeline wrote these files from checked images, so `limits` is optional (no size check)."""
    try:
        return decode_image(data, channels, limits)
    except UnreadableImage as err:
        raise PipelineError(f"{path}: a stored image is not readable ({err}); rerun the stage that wrote it") from None


def read_column(path: str | Path, name: str) -> np.ndarray:
    return pq.read_table(path, columns=[name]).column(name).to_numpy()
