"""Pixels: PNG encoding and decoding, channel and size conversion, floats to uint8, grids.

The one place image bytes become arrays and back, for the dataset sources, the Parquet contract,
the samplers and the figures alike.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

# The formats a dataset image may be in, whatever its file name says; PIL's others (EPS runs
# Ghostscript, ICO/ICNS hold embedded images) are more parser than a dataset needs.
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP")


class UnreadableImage(Exception):
    """The bytes or file are not a decodable image; the message says why."""


class ImageTooLarge(UnreadableImage):
    """The header declares a size over the limits; nothing was decoded. `limit` names the limit."""

    def __init__(self, message: str, limit: str) -> None:
        super().__init__(message)
        self.limit = limit  # "max_pixels" or "max_aspect"


@dataclass(frozen=True)
class SizeLimits:
    """The largest size an image may declare, checked on its header before any pixel is decoded.

    `max_pixels` stops decompression bombs (a few KB of PNG that declare 20000x20000) before
    they cost memory; `max_aspect` stops strips such as 100000x1, which resizing to a square
    would turn into noise.
    """

    max_pixels: int = 4096 * 4096
    max_aspect: float = 10.0

    def check(self, width: int, height: int) -> None:
        """Raise `ImageTooLarge` if a declared width x height is over either limit."""
        size = f"{width}x{height}"
        if width * height > self.max_pixels:
            pixels = f"{width * height:,} pixels, over the limit of {self.max_pixels:,}"
            raise ImageTooLarge(f"{size} is {pixels}", "max_pixels")
        long, short = max(width, height), min(width, height)
        if long > self.max_aspect * short:
            ratio = f"{long / short:,.1f}:1" if short else "degenerate"
            raise ImageTooLarge(f"{size} has aspect ratio {ratio}, over the limit of {self.max_aspect:g}:1", "max_aspect")


DEFAULT_LIMITS = SizeLimits()


def one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or err.__class__.__name__
    return text if len(text) <= 160 else text[:157] + "..."


def decode_image(
    source: bytes | Path, channels: int | None = None, limits: SizeLimits | None = DEFAULT_LIMITS
) -> np.ndarray:
    """Encoded image (bytes or a file) to (H, W, C) uint8, refusing sizes over `limits` (None: any).

    C is `channels` when given, else 1 for grey modes and 3 for colour ones. `Image.open` reads
    only the header, so an oversized image is refused before its pixels take any memory.
    """
    max_pixels = None if limits is None else limits.max_pixels
    try:
        with _open(source, limits) as img:
            if limits is not None:
                limits.check(img.width, img.height)
            with _pil_pixel_limit(max_pixels):  # PIL checks GIF frames and TIFF tiles again while decoding
                img.load()
            array = _mode_to_array(img)
    except UnreadableImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageTooLarge(one_line(err), "max_pixels") from None
    except UnidentifiedImageError:
        raise UnreadableImage(f"not a {', '.join(FORMATS)} image") from None
    except Exception as err:  # Pillow signals corrupt data with many types (OSError, SyntaxError, ...)
        raise UnreadableImage(one_line(err)) from None
    array = array[..., None] if array.ndim == 2 else array
    return array if channels is None else convert_channels(array, channels)


def _open(source: bytes | Path, limits: SizeLimits | None) -> Image.Image:
    """The image with only its header read, under PIL's own checks at this call's pixel limit
    (TIFF tile sizes among them); when those refuse it, the header is read again without them
    only to name its size in the message."""
    def fresh() -> Path | io.BytesIO:
        return source if isinstance(source, Path) else io.BytesIO(source)

    try:
        with _pil_pixel_limit(None if limits is None else limits.max_pixels):
            return Image.open(fresh(), formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        with _pil_pixel_limit(None), Image.open(fresh(), formats=FORMATS) as header:
            if limits is not None:
                limits.check(header.width, header.height)
        raise ImageTooLarge(one_line(err), "max_pixels") from None


@contextmanager
def _pil_pixel_limit(max_pixels: int | None) -> Iterator[None]:
    """PIL's own bomb check reads a module global, warns above it and raises only above twice it:
    for the span of one decode, set it to this call's limit and raise its warning as an error.
    (A global: not for decoding in several threads at once, which no reader here does.)"""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def encode_png(image: np.ndarray) -> bytes:
    """(H, W, C) uint8 to PNG bytes; deterministic for the same pixels."""
    mode_image = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    buffer = io.BytesIO()
    mode_image.save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


def _mode_to_array(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("1", "L", "LA", "La"):  # alpha is dropped, as PIL's convert does
        return np.asarray(img.convert("L"), dtype=np.uint8)
    if mode.startswith("I") or mode == "F":
        return _wide_grey(np.nan_to_num(np.asarray(img, dtype=np.float64)), mode)
    rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    if mode == "P" and (rgb == rgb[..., :1]).all():  # a grey palette
        return rgb[..., 0]
    return rgb


def _wide_grey(values: np.ndarray, mode: str) -> np.ndarray:
    """16/32-bit or float grey to uint8: floats up to 1 as 0..1, values above 255 as 16-bit."""
    top = values.max(initial=0)
    full = 1.0 if mode == "F" and top <= 1 else 65535.0 if top > 255 else 255.0
    return to_uint8(values, 255.0 / full)


def convert_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """(..., C) uint8 to (..., channels): grey is repeated; colour becomes ITU-R 601 luma, as PIL."""
    if images.shape[-1] == channels:
        return images
    if channels == 3:
        return np.repeat(images, 3, axis=-1)
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return to_uint8(images.astype(np.float32) @ weights, 1.0)[..., None]


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, C) uint8 to (size, size, C), bilinear; a non-square image is stretched."""
    if image.shape[:2] == (size, size):
        return image
    pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    resized = np.asarray(pil.resize((size, size), Image.Resampling.BILINEAR))
    return resized[..., None] if resized.ndim == 2 else resized


def to_uint8(values: np.ndarray, scale: float = 255.0) -> np.ndarray:
    """`values * scale` rounded and clipped to 0..255. Floats are scaled in their own precision
    (float32 model outputs stay float32, so a pixel's rounding never depends on a cast)."""
    values = np.asarray(values)
    if values.dtype == np.uint8 and scale == 1.0:
        return values
    if values.dtype.kind in "biu":
        values = values.astype(np.float64)
    return np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)


def tensor_to_uint8(images) -> np.ndarray:
    """(N, C, H, W) floats in [0, 1] (a tensor or an array) to (N, H, W, C) uint8."""
    array = images.detach().cpu().numpy() if hasattr(images, "detach") else np.asarray(images)
    return to_uint8(array.transpose(0, 2, 3, 1))


def tile(rows: list[np.ndarray], pad: int = 1, scale: int = 1) -> Image.Image:
    """rows: equal-length lists of (H, W, C) uint8 images; one grid row each, white padding."""
    h, w, c = rows[0][0].shape
    n_cols = max(len(r) for r in rows)
    canvas = np.full((len(rows) * (h + pad) + pad, n_cols * (w + pad) + pad, c), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, image in enumerate(row):
            top, left = pad + i * (h + pad), pad + j * (w + pad)
            canvas[top : top + h, left : left + w] = image
    picture = Image.fromarray(canvas[..., 0] if c == 1 else canvas)
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
    return picture


def auto_scale(height: int, target: int = 48) -> int:
    """Enlarge tiny images (8x8 digits) so a grid is readable without squinting."""
    return max(1, target // height)
