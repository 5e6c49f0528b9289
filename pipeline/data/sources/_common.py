"""What every file-based source shares: paths, image decoding, pixel arrays and labels.

Unreadable images follow `dataset.on_error`: "raise" stops at the first one; "skip" leaves it out
and logs one WARNING line per file on the `pipeline.data.sources` logger, then one line with the
count. Logging (not `warnings`) because Python's last-resort handler prints exactly that one
line to stderr when nothing is configured, and every file is reported, not only the first.
An image whose header declares more than `dataset.max_image_pixels` pixels, or a long side over
`dataset.max_aspect_ratio` times its short side, counts as unreadable: it is refused from its
header alone, before its pixels take any memory (see `images.SizeLimits`).

Pixel values: integers are taken as 0..255; floats whose maximum is at most 1.0 are taken as
0..1 and scaled by 255 (decided once for the whole source, so an all-black image is not
misread); anything outside 0..255, NaN or infinite is an error. Rows count from 0.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from numbers import Integral
from pathlib import Path

import numpy as np

from pipeline.config import DatasetConfig
from pipeline.data.images import (
    ImageTooLarge,
    SizeLimits,
    UnreadableImage,
    convert_channels,
    decode_image,
    resize_image,
    to_uint8,
)
from pipeline.errors import PipelineError

logger = logging.getLogger("pipeline.data.sources")

def require_path(value: str | None, param: str, folder: bool | None = False) -> Path:
    """The path a param names, which must exist: a folder if `folder`, a file if False, else either."""
    if not value:
        raise PipelineError(f"{param}: not set")
    path = Path(value)
    if not path.exists():
        raise PipelineError(f"{param}: {path} not found")
    if folder and not path.is_dir():
        raise PipelineError(f"{param}: {path} is a file; expected a folder")
    if folder is False and path.is_dir():
        raise PipelineError(f"{param}: {path} is a folder; expected a file")
    return path


def describe_columns(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(str(name) for name in names[:limit])
    return f"{shown}, ... ({len(names)} columns)" if len(names) > limit else shown


# --- images -------------------------------------------------------------------------------


def size_limits(cfg: DatasetConfig) -> SizeLimits:
    return SizeLimits(cfg.max_image_pixels, cfg.max_aspect_ratio)


class ImageDecoder:
    """Decodes images one by one, applying `dataset.on_error` and the size limits of `cfg`.

    With `dataset.image_size` set, each image is resized as soon as it is decoded (after its
    channels are converted when `dataset.channels` is set, as `stack_images` would), so a folder
    of large photos never holds more than one at full size; the pixels are the same.
    """

    def __init__(self, cfg: DatasetConfig) -> None:
        self.on_error = cfg.on_error
        self.limits = size_limits(cfg)
        self.channels, self.size = cfg.channels, cfg.image_size
        self.skipped = 0

    def __call__(self, source: bytes | Path | None, where: str) -> np.ndarray | None:
        """The image, or None when it is unreadable and skipped; `where` names it in messages."""
        try:
            if source is None:
                raise UnreadableImage("no image data")
            image = decode_image(source, self.channels, self.limits)
            return image if self.size is None else resize_image(image, self.size)
        except ImageTooLarge as err:
            problem, hint = f"refused before decoding ({err})", f"remove it or raise {limit_param(err)}"
        except UnreadableImage as err:
            problem, hint = f"not a readable image ({err})", "fix or remove it"
        if self.on_error == "raise":
            raise PipelineError(f"{where}: {problem}; {hint}, or set dataset.on_error: skip")
        self.skipped += 1
        logger.warning("%s: skipped, %s", where, problem)
        return None

    def report(self) -> None:
        if self.skipped:
            logger.warning(
                "dataset: skipped %d unreadable image(s) (dataset.on_error: skip)", self.skipped
            )


def limit_param(err: ImageTooLarge) -> str:
    return "dataset.max_aspect_ratio" if err.limit == "max_aspect" else "dataset.max_image_pixels"


def check_declared_shape(shape: tuple[int, ...], where: str, cfg: DatasetConfig) -> None:
    """Refuse an array of images whose declared (N, ...) shape breaks the size limits, before its
    values are read: a compressed .npz or gzipped IDX can declare far more than its file holds."""
    if not 2 <= len(shape) <= 4:
        return  # not images; the loader says so once it has the array
    _, height, width, _ = as_nhwc(np.empty((0, *shape[1:]), np.uint8), where).shape
    try:
        size_limits(cfg).check(width, height)
    except ImageTooLarge as err:
        raise PipelineError(
            f"{where}: refused from the declared shape ({err}); raise {limit_param(err)} if these images are meant"
        ) from None


def stack_images(images: Sequence[np.ndarray], names: Sequence[str], cfg: DatasetConfig) -> np.ndarray:
    """Per-image (H, W, C) arrays to one (N, H, W, C) array.

    Channels: `dataset.channels` if set, else 3 as soon as one image is colour, else 1.
    Sizes: each image is resized to `dataset.image_size` if set; otherwise all must match.
    """
    channels = cfg.channels or (3 if any(image.shape[-1] == 3 for image in images) else 1)
    images = [convert_channels(image, channels) for image in images]
    if cfg.image_size is not None:
        images = [resize_image(image, cfg.image_size) for image in images]
    else:
        first = images[0].shape[:2]
        for name, image in zip(names, images):
            if image.shape[:2] != first:
                raise PipelineError(
                    f"dataset: images differ in size ({names[0]} is {_hw(first)}, {name} is "
                    f"{_hw(image.shape)}); set dataset.image_size to resize them all"
                )
    return np.stack(images)


def _hw(shape: tuple[int, ...]) -> str:
    return f"{shape[0]}x{shape[1]}"


# --- pixel arrays -------------------------------------------------------------------------


def square_shape(count: int, where: str) -> tuple[int, int, int]:
    """(H, W, C) for a flat row of `count` values: side*side grey or side*side*3 RGB (HWC order)."""
    side = math.isqrt(count)
    if count and side * side == count:
        return side, side, 1
    side = math.isqrt(count // 3)
    if count and count % 3 == 0 and side * side * 3 == count:
        return side, side, 3
    raise PipelineError(
        f"{where}: {count} pixel values per image is neither side*side (grey) nor "
        "side*side*3 (RGB), so the image shape cannot be inferred"
    )


def as_nhwc(values: np.ndarray, where: str) -> np.ndarray:
    """(N, H*W[*3]), (N, H, W), (N, H, W, C) or (N, C, H, W) pixel values to (N, H, W, C)."""
    if values.ndim == 2:
        return values.reshape(len(values), *square_shape(values.shape[1], where))
    if values.ndim == 3:
        return values[..., None]
    if values.ndim == 4 and values.shape[-1] in (1, 3):
        return values
    if values.ndim == 4 and values.shape[1] in (1, 3):
        return values.transpose(0, 2, 3, 1)
    raise PipelineError(
        f"{where}: images shaped {values.shape}; expected (N, H, W), (N, H, W, C) with C 1 or 3, "
        "or (N, H*W) flat rows"
    )


def pixel_scale(images: np.ndarray | Sequence[np.ndarray], where: str) -> float:
    """The factor to 0..255 (255 for floats in 0..1 and booleans, else 1), checking the values.

    `images` is one (N, ...) array, or a list of per-row arrays of any shapes.
    """
    if isinstance(images, np.ndarray):
        blocks = [(0, images)]
    else:
        blocks = [(row, image[None]) for row, image in enumerate(images)]
    fractional, low, high = False, math.inf, -math.inf
    for first_row, block in blocks:
        if block.dtype.kind not in "biuf":
            raise PipelineError(f"{where}: pixel values must be numbers, got {block.dtype}")
        if block.size == 0:
            continue
        if block.dtype.kind in "bf":
            fractional = True
            bad = ~np.isfinite(block.reshape(len(block), -1)).all(axis=1)
            if bad.any():
                row = first_row + int(np.flatnonzero(bad)[0])
                raise PipelineError(f"{where}: row {row} has NaN or infinite pixel values")
        low, high = min(low, float(block.min())), max(high, float(block.max()))
    if low < 0 or high > 255:
        raise PipelineError(
            f"{where}: pixel values span {low:g}..{high:g}; expected 0..255 (or floats in 0..1)"
        )
    return 255.0 if fractional and high <= 1.0 else 1.0


def pixels_to_uint8(values: np.ndarray, where: str) -> np.ndarray:
    """Checked (N, ...) pixel values to uint8 (see the module docstring for the rules)."""
    return to_uint8(values, pixel_scale(values, where))


# --- labels -------------------------------------------------------------------------------


def encode_labels(
    values: Sequence[object],
    where: str,
    names: Mapping[int, str] | None = None,
    rows: Sequence[int] | None = None,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Raw labels to (int64 indices 0..K-1, class names).

    Strings become classes in sorted order. Integers keep their order; ones that are not already
    0..K-1 (e.g. {3, 7}) are renumbered, named by `names` (HF ClassLabel, a label-name column)
    or else by the number itself. Classes in `names` with no row are left out. `rows` maps each
    value to its row number in messages (when some rows were skipped).
    """
    rows = range(len(values)) if rows is None else rows
    keys = [_label_key(value, where, row) for value, row in zip(values, rows)]
    if any(isinstance(key, str) for key in keys):
        keys = [str(key) for key in keys]
        ids: list = sorted(set(keys))
        class_names = tuple(ids)
    else:
        ids = sorted(set(keys))
        if names is not None:
            for key, row in zip(keys, rows):
                if key not in names:
                    raise PipelineError(f"{where}: row {row} has label {key}, which has no class name")
            unused = [names[i] for i in sorted(set(names) - set(ids))]
            if unused:
                logger.warning("%s: classes with no rows are left out: %s", where, ", ".join(unused))
        class_names = tuple(names[i] if names is not None else str(i) for i in ids)
    _check_unique(class_names, where)
    index = {key: i for i, key in enumerate(ids)}
    return np.array([index[key] for key in keys], dtype=np.int64), class_names


def _label_key(value: object, where: str, row: int) -> int | str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, str):
        if value.strip():
            return value
    elif isinstance(value, Integral):
        return int(value)
    elif isinstance(value, float) and math.isfinite(value):
        if value.is_integer():
            return int(value)
        raise PipelineError(f"{where}: row {row} has label {value!r}, not an integer or a class name")
    elif value is not None and not (isinstance(value, float) and math.isnan(value)):
        raise PipelineError(f"{where}: row {row} has label {value!r}, not an integer or a class name")
    raise PipelineError(f"{where}: row {row} has no label")


def _check_unique(class_names: Sequence[str], where: str) -> None:
    seen: set[str] = set()
    for name in class_names:
        if name in seen:
            raise PipelineError(f"{where}: class name {name!r} is given to two different labels")
        seen.add(name)
