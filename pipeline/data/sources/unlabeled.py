"""`dataset.unlabeled_path`: images without labels, read with the labeled sources' readers.

The path is a folder of images (no class sub-folders needed; found recursively like a class
folder's), a .parquet file or folder (`dataset.image_column`: encoded images or pixel lists), or a
.npz (`dataset.image_column`, else `x`). Images must match the labeled data's size unless
`dataset.image_size` resizes both; channels follow the labeled data. Unreadable files follow
`dataset.on_error`, and every other problem is one line naming the path, as for labeled data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.config import DatasetConfig
from pipeline.data.images import convert_channels, one_line
from pipeline.data.imageset import ImageSet
from pipeline.data.sources._common import ImageDecoder, as_nhwc, pixels_to_uint8, require_path, stack_images
from pipeline.data.sources.image_folder import IMAGE_SUFFIXES, image_files
from pipeline.data.sources.npz_source import array_name
from pipeline.data.sources.parquet_source import encoded_images, is_list, parquet_files, pixel_lists
from pipeline.errors import PipelineError

PARAM = "dataset.unlabeled_path"


def load_unlabeled(cfg: DatasetConfig, labeled: ImageSet) -> np.ndarray:
    """(N, H, W, C) uint8 images from `dataset.unlabeled_path`, shaped like `labeled`'s."""
    path = require_path(cfg.unlabeled_path, PARAM, folder=None)
    if path.suffix.lower() == ".npz":
        images = _npz_images(path, cfg)
    elif path.suffix.lower() == ".parquet" or (path.is_dir() and any(path.rglob("*.parquet"))):
        images = _parquet_images(path, cfg)
    elif path.is_dir():
        images = _folder_images(path, cfg)
    else:
        raise PipelineError(f"{PARAM}: {path} is neither an image folder, a .parquet nor a .npz file")
    _, h, w, c = labeled.images.shape
    if images.shape[-1] != c:
        images = convert_channels(images, c)
    if images.shape[1:3] != (h, w):
        raise PipelineError(
            f"{PARAM}: images are {images.shape[1]}x{images.shape[2]}, the labeled ones {h}x{w}; "
            "set dataset.image_size to resize both"
        )
    return np.ascontiguousarray(images)


def _folder_images(root: Path, cfg: DatasetConfig) -> np.ndarray:
    files = image_files(root)
    if not files:
        raise PipelineError(f"{PARAM}: {root} is an empty folder (no {', '.join(IMAGE_SUFFIXES)} files)")
    decoder = ImageDecoder(cfg)
    kept = [(str(file), image) for file in files if (image := decoder(file, str(file))) is not None]
    decoder.report()
    if not kept:
        raise PipelineError(f"{PARAM}: no readable image in {root}")
    return stack_images([image for _, image in kept], [name for name, _ in kept], cfg)


def _npz_images(path: Path, cfg: DatasetConfig) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as archive:
            key = array_name(archive.files, cfg.image_column, "x", "dataset.image_column", str(path))
            values = archive[key]
    except PipelineError:
        raise
    except Exception as err:  # numpy and zipfile report corrupt archives with many types
        raise PipelineError(f"{path}: not a readable .npz file ({one_line(err)})") from None
    where = f"{path}: array {key!r}"
    if len(values) == 0:
        raise PipelineError(f"{where}: no images")
    images = as_nhwc(values, where)
    return _resized(pixels_to_uint8(images, where), cfg)


def _parquet_images(path: Path, cfg: DatasetConfig) -> np.ndarray:
    files = parquet_files(path)
    columns = []
    for file in files:
        try:
            if cfg.image_column not in pq.read_schema(file).names:
                raise PipelineError(f"dataset.image_column: no column {cfg.image_column!r} in {file}")
            columns.extend(pq.read_table(file, columns=[cfg.image_column]).column(0).chunks)
        except PipelineError:
            raise
        except Exception as err:  # pyarrow reports corrupt files as ArrowInvalid, OSError, ...
            raise PipelineError(f"{file}: not a readable Parquet file ({one_line(err)})") from None
    try:
        column = pa.chunked_array(columns)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise PipelineError(f"{PARAM}: the files in {path} differ in schema") from None
    where = f"{path}: column {cfg.image_column!r}"
    if len(column) == 0:
        raise PipelineError(f"{where}: no rows")
    if is_list(column.type):
        return _resized(pixel_lists(column, where, cfg), cfg)
    images, _ = encoded_images(column, where, path if path.is_dir() else path.parent, cfg)
    return images


def _resized(images: np.ndarray, cfg: DatasetConfig) -> np.ndarray:
    """Array sources are resized here; file-based ones already were, image by image."""
    if cfg.image_size is None or images.shape[1:3] == (cfg.image_size, cfg.image_size):
        return images
    names = [f"row {i}" for i in range(len(images))]
    return stack_images(list(images), names, cfg)
