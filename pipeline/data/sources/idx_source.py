"""MNIST-style IDX files: `dataset.path` is the images file, `dataset.labels_path` the labels.

Either file may be gzipped (recognised by its first bytes, not its name). The format: two zero
bytes, a type code (0x08 ubyte, 0x09 byte, 0x0B short, 0x0C int, 0x0D float, 0x0E double), the
number of dimensions, each dimension as a big-endian uint32, then the values, big-endian, C order.
Images are (N, H, W) or (N, H, W, C); labels (N,) integers. EMNIST's transposed images are
loaded as stored. Image sizes over `dataset.max_image_pixels` / `max_aspect_ratio` are refused
from the header, before any value is read or decompressed.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path
from typing import BinaryIO, NoReturn

import numpy as np

from pipeline.config import DatasetConfig
from pipeline.data.images import one_line
from pipeline.data.imageset import ImageSet
from pipeline.data.sources._common import (
    as_nhwc,
    check_declared_shape,
    encode_labels,
    pixels_to_uint8,
    require_path,
)
from pipeline.errors import PipelineError

IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
GZIP_MAGIC = b"\x1f\x8b"
MAX_DEFLATE_RATIO = 1032  # gzip's deflate expands a byte to at most this many


def load_idx(cfg: DatasetConfig) -> ImageSet:
    images_path = require_path(cfg.path, "dataset.path")
    if not cfg.labels_path:
        raise PipelineError("dataset.labels_path: not set; source 'idx' needs the labels file")
    labels_path = require_path(cfg.labels_path, "dataset.labels_path")
    images, labels = read_idx(images_path, cfg), read_idx(labels_path)
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


def read_idx(path: Path, cfg: DatasetConfig | None = None) -> np.ndarray:
    """One IDX file (gzipped or not) as a native-endian array, its header checked against its size.

    The values are read (and decompressed) only after the header: at most the bytes it declares,
    and with `cfg`, images of a size within its limits, so a gzip bomb costs no memory.
    """
    with path.open("rb") as file:
        gzipped = file.read(2) == GZIP_MAGIC
    try:
        with gzip.open(path, "rb") if gzipped else path.open("rb") as stream:
            dims, dtype = _read_header(stream, path)
            if cfg is not None:
                check_declared_shape(dims, str(path), cfg)
            expected = math.prod(dims) * dtype.itemsize
            room = path.stat().st_size * MAX_DEFLATE_RATIO if gzipped else path.stat().st_size - stream.tell()
            if expected > room:  # never allocate what cannot be there
                _size_mismatch(path, dims, expected, f"at most {room} bytes" if gzipped else f"{room} bytes")
            raw = stream.read(expected + 1)
    except (OSError, EOFError, zlib.error) as err:  # gzip and zlib report damage with these types
        if not gzipped:
            raise
        raise PipelineError(f"{path}: not a valid gzip file ({one_line(err)})") from None
    if len(raw) != expected:
        _size_mismatch(path, dims, expected, f"{len(raw)} bytes" if len(raw) < expected else "more bytes")
    return np.frombuffer(raw, dtype).reshape(dims).astype(dtype.newbyteorder("="))


def _size_mismatch(path: Path, dims: tuple[int, ...], expected: int, holds: str) -> NoReturn:
    raise PipelineError(
        f"{path}: header says {'x'.join(map(str, dims))} values ({expected} bytes) but the file "
        f"holds {holds} of data (truncated or corrupt)"
    )


def _read_header(stream: BinaryIO, path: Path) -> tuple[tuple[int, ...], np.dtype]:
    magic = stream.read(4)
    if len(magic) < 4 or magic[0] or magic[1] or magic[2] not in IDX_TYPES or not magic[3]:
        raise PipelineError(f"{path}: not an IDX file (magic number {magic.hex() or 'missing'})")
    ndim, dtype = magic[3], np.dtype(IDX_TYPES[magic[2]])
    sizes = stream.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise PipelineError(f"{path}: IDX header cut short ({4 + len(sizes)} bytes, {ndim} dimensions)")
    return struct.unpack(f">{ndim}I", sizes), dtype
