"""MNIST-style IDX files: `dataset.path` is the images file, `dataset.labels_path` the labels.

Either file may be gzipped (recognised by its first bytes, not its name). The format: two zero
bytes, a type code (0x08 ubyte, 0x09 byte, 0x0B short, 0x0C int, 0x0D float, 0x0E double), the
number of dimensions, each dimension as a big-endian uint32, then the values, big-endian, C order.
Images are (N, H, W) or (N, H, W, C); labels (N,) integers. EMNIST's transposed images are
loaded as stored.
"""

from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path

import numpy as np

from pipeline.config import DatasetConfig
from pipeline.data.images import one_line
from pipeline.data.imageset import ImageSet
from pipeline.data.sources._common import as_nhwc, encode_labels, pixels_to_uint8, require_path
from pipeline.errors import PipelineError

IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
GZIP_MAGIC = b"\x1f\x8b"


def load_idx(cfg: DatasetConfig) -> ImageSet:
    images_path = require_path(cfg.path, "dataset.path")
    if not cfg.labels_path:
        raise PipelineError("dataset.labels_path: not set; source 'idx' needs the labels file")
    labels_path = require_path(cfg.labels_path, "dataset.labels_path")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim not in (3, 4):
        raise PipelineError(f"{images_path}: holds an array shaped {images.shape}; expected images (N, H, W)")
    if labels.ndim != 1:
        raise PipelineError(f"{labels_path}: holds an array shaped {labels.shape}; expected labels (N,)")
    if len(images) != len(labels):
        raise PipelineError(
            f"{images_path} holds {len(images)} images but {labels_path} {len(labels)} labels"
        )
    if len(images) == 0:
        raise PipelineError(f"{images_path}: no images")
    where = str(images_path)
    label_ids, class_names = encode_labels(labels.tolist(), str(labels_path))
    return ImageSet(pixels_to_uint8(as_nhwc(images, where), where), label_ids, class_names)


def read_idx(path: Path) -> np.ndarray:
    """One IDX file (gzipped or not) as a native-endian array, its header checked against its size."""
    raw = path.read_bytes()
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except Exception as err:  # gzip and zlib report damage as OSError, EOFError, zlib.error
            raise PipelineError(f"{path}: not a valid gzip file ({one_line(err)})") from None
    if len(raw) < 4 or raw[0] or raw[1] or raw[2] not in IDX_TYPES or not raw[3]:
        raise PipelineError(f"{path}: not an IDX file (magic number {raw[:4].hex() or 'missing'})")
    ndim, dtype = raw[3], np.dtype(IDX_TYPES[raw[2]])
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise PipelineError(f"{path}: IDX header cut short ({len(raw)} bytes, {ndim} dimensions)")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = math.prod(dims) * dtype.itemsize
    if len(raw) - header != expected:
        raise PipelineError(
            f"{path}: header says {'x'.join(map(str, dims))} values ({expected} bytes) but the file "
            f"holds {len(raw) - header} bytes of data (truncated or corrupt)"
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))
