"""NumPy .npz: an image array (N, H, W), (N, H, W, C), (N, C, H, W) or flat (N, H*W[*3]), and a
label array (N,) of integers or strings.

The arrays are `dataset.image_column` / `dataset.label_column` when the file has arrays of
those names, else `x` / `y` (so Keras' mnist.npz works with `image_column: x_train`). The file
is read with `allow_pickle=False`, so string labels must be a NumPy string array, not objects.
Pixel values follow the shared rules (see `_common`): 0..255, or floats in 0..1 scaled by 255.
"""

from __future__ import annotations

import numpy as np

from pipeline.config import DatasetConfig
from pipeline.data.images import one_line
from pipeline.data.imageset import ImageSet
from pipeline.data.sources._common import (
    as_nhwc,
    check_declared_shape,
    describe_columns,
    encode_labels,
    pixels_to_uint8,
    require_path,
)
from pipeline.errors import PipelineError


def load_npz(cfg: DatasetConfig) -> ImageSet:
    path = require_path(cfg.path, "dataset.path")
    (x_key, x), (y_key, y) = _read_arrays(str(path), cfg)
    where = f"{path}: array {x_key!r}"
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise PipelineError(f"{path}: array {y_key!r} is shaped {y.shape}; expected one label per image (N,)")
    x = as_nhwc(x, where)
    if len(x) != len(y):
        raise PipelineError(f"{path}: arrays {x_key!r} ({len(x)}) and {y_key!r} ({len(y)}) differ in length")
    if len(x) == 0:
        raise PipelineError(f"{where}: no images")
    labels, class_names = encode_labels(y.tolist(), f"{path}: array {y_key!r}")
    return ImageSet(pixels_to_uint8(x, where), labels, class_names)


def _read_arrays(path: str, cfg: DatasetConfig) -> tuple[tuple[str, np.ndarray], ...]:
    """(name, array) of the images and of the labels."""
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise PipelineError(f"{path}: a single .npy array, not an .npz archive of images and labels")
        with archive:
            x_key = array_name(archive.files, cfg.image_column, "x", "dataset.image_column", path)
            y_key = array_name(archive.files, cfg.label_column, "y", "dataset.label_column", path)
            check_declared_shape(_declared_shape(archive, x_key), f"{path}: array {x_key!r}", cfg)
            return (x_key, archive[x_key]), (y_key, archive[y_key])
    except PipelineError:
        raise
    except Exception as err:  # numpy and zipfile report corrupt archives with many types
        hint = "; save string labels as np.array(labels, dtype=str)" if "allow_pickle" in str(err) else ""
        raise PipelineError(f"{path}: not a readable .npz file ({one_line(err)}){hint}") from None


def _declared_shape(archive: np.lib.npyio.NpzFile, key: str) -> tuple[int, ...]:
    """The shape an array's .npy header declares, read without decompressing its values."""
    name = f"{key}.npy" if f"{key}.npy" in archive.zip.namelist() else key
    with archive.zip.open(name) as member:
        version = np.lib.format.read_magic(member)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        return read(member)[0]


def array_name(keys: list[str], configured: str, default: str, param: str, where: str) -> str:
    for name in (configured, default):
        if name in keys:
            return name
    raise PipelineError(
        f"{param}: no array {configured!r} or {default!r} in {where} (arrays: {describe_columns(keys)})"
    )
