"""Small synthetic labelled image datasets in every source format, for tests.

Each class draws its own shape: a stroke at a class-specific angle through a jittered centre,
plus a blob at a class-specific spot, with a little noise (RGB images also get a class colour),
so a classifier can tell the classes apart from a handful of examples. `make_images` returns the
arrays; each `make_*` writes them (class by class, in order) in one format and returns the path,
so a test can compare what a loader reads with `make_images(...)` called with the same arguments.
"""

from __future__ import annotations

import gzip as gzip_module
import io
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from pipeline.data.imageset import ImageSet
from pipeline.data.parquet import write_imageset

FORMATS = {"png": "PNG", "jpg": "JPEG", "bmp": "BMP"}


def class_names(num_classes: int) -> tuple[str, ...]:
    return tuple(f"class_{k:02d}" for k in range(num_classes))


def make_images(
    num_classes: int = 3, per_class: int = 12, size: int = 28, channels: int = 1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(N, size, size, channels) uint8 images and (N,) int64 labels, class by class."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    images = []
    for k in range(num_classes):
        angle = np.pi * k / num_classes
        turn = 2 * np.pi * k / num_classes
        spot = 0.5 + 0.3 * np.array([np.cos(turn), np.sin(turn)])
        colour = 0.35 + 0.65 * ((k * np.array([0.37, 0.61, 0.83]) + np.array([0.0, 0.3, 0.6])) % 1)
        for _ in range(per_class):
            cx, cy = 0.5 + rng.normal(0, 0.04, 2)
            across = np.abs((xx - cx) * np.sin(angle) - (yy - cy) * np.cos(angle))
            stroke = (across < 0.08) & (np.hypot(xx - cx, yy - cy) < 0.38)
            bx, by = spot + rng.normal(0, 0.03, 2)
            blob = np.exp(-((xx - bx) ** 2 + (yy - by) ** 2) / (2 * 0.07**2))
            ink = np.clip(0.85 * stroke + blob + rng.normal(0, 0.04, (size, size)), 0, 1)
            pixels = ink[..., None] * (colour if channels == 3 else 1.0)
            images.append(np.rint(pixels * 255).astype(np.uint8))
    labels = np.repeat(np.arange(num_classes, dtype=np.int64), per_class)
    return np.stack(images), labels


def make_image_folder(
    root: str | Path,
    num_classes: int = 3,
    per_class: int = 12,
    size: int = 28,
    channels: int = 1,
    seed: int = 0,
    fmt: str = "png",
    names: Sequence[str] | None = None,
) -> Path:
    """`root/<class name>/<class name>_000.<fmt>`, ...; returns `root` (the `dataset.path`)."""
    root = Path(root)
    names = names or class_names(num_classes)
    images, labels = make_images(num_classes, per_class, size, channels, seed)
    counters = [0] * num_classes
    for image, label in zip(images, labels):
        folder = root / names[label]
        folder.mkdir(parents=True, exist_ok=True)
        save_image(image, folder / f"{names[label]}_{counters[label]:03d}.{fmt}")
        counters[label] += 1
    return root


def save_image(image: np.ndarray, path: Path) -> None:
    """(H, W, C) uint8 to an image file; the format follows the suffix."""
    pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    pil.save(path, format=FORMATS[path.suffix.lstrip(".").lower()])


def encode(image: np.ndarray, fmt: str = "png") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, format=FORMATS[fmt])
    return buffer.getvalue()


def _label_column(labels: np.ndarray, label_values: Sequence | None) -> list:
    return [label_values[i] for i in labels] if label_values is not None else labels.tolist()


def make_npz(
    root: str | Path,
    num_classes: int = 3,
    per_class: int = 12,
    size: int = 28,
    channels: int = 1,
    seed: int = 0,
    label_values: Sequence | None = None,
    float_pixels: bool = False,
    name: str = "data.npz",
) -> Path:
    """Arrays `x` (N, H, W) for grey or (N, H, W, 3), and `y`; floats in 0..1 if `float_pixels`."""
    images, labels = make_images(num_classes, per_class, size, channels, seed)
    x = images[..., 0] if channels == 1 else images
    x = x / 255.0 if float_pixels else x
    path = Path(root) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x=x, y=np.array(_label_column(labels, label_values)))
    return path


def make_csv(
    root: str | Path,
    num_classes: int = 3,
    per_class: int = 12,
    size: int = 28,
    channels: int = 1,
    seed: int = 0,
    label_values: Sequence | None = None,
    float_pixels: bool = False,
    name: str = "data.csv",
) -> Path:
    """Kaggle MNIST layout: `label,pixel0,...` with pixels in HWC order."""
    images, labels = make_images(num_classes, per_class, size, channels, seed)
    flat = images.reshape(len(images), -1)
    flat = flat / 255.0 if float_pixels else flat
    columns = {f"pixel{i}": flat[:, i] for i in range(flat.shape[1])}
    frame = pd.DataFrame({"label": _label_column(labels, label_values), **columns})
    path = Path(root) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def make_parquet(
    root: str | Path,
    num_classes: int = 3,
    per_class: int = 12,
    size: int = 28,
    channels: int = 1,
    seed: int = 0,
    layout: str = "contract",
    label_values: Sequence | None = None,
    fmt: str = "png",
    name: str = "data.parquet",
) -> Path:
    """layout: "contract" (the pipeline's own file), "bytes" (a binary `image` column),
    "flat" (H*W[*3] pixel lists) or "nested" (H x W [x C] pixel lists)."""
    images, labels = make_images(num_classes, per_class, size, channels, seed)
    path = Path(root) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if layout == "contract":
        write_imageset(path, ImageSet(images, labels, class_names(num_classes)))
        return path
    if layout == "bytes":
        column = pa.array([encode(image, fmt) for image in images], type=pa.binary())
    elif layout == "flat":
        column = pa.array(images.reshape(len(images), -1).tolist(), type=pa.list_(pa.uint8()))
    elif layout == "nested":
        nested = images[..., 0] if channels == 1 else images
        column = pa.array(nested.tolist())
    else:
        raise ValueError(f"unknown layout {layout!r}")
    pq.write_table(pa.table({"image": column, "label": _label_column(labels, label_values)}), path)
    return path


def make_idx(
    root: str | Path,
    num_classes: int = 3,
    per_class: int = 12,
    size: int = 28,
    seed: int = 0,
    gzip: bool = True,
    label_values: Sequence[int] | None = None,
) -> tuple[Path, Path]:
    """MNIST-style `images-idx3-ubyte[.gz]` and `labels-idx1-ubyte[.gz]`; returns both paths."""
    images, labels = make_images(num_classes, per_class, size, 1, seed)
    ids = np.array(_label_column(labels, label_values), dtype=np.uint8)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gzip else ""
    paths = root / f"images-idx3-ubyte{suffix}", root / f"labels-idx1-ubyte{suffix}"
    for path, array in zip(paths, (images[..., 0], ids)):
        path.write_bytes(idx_bytes(array, compress=gzip))
    return paths


def idx_bytes(array: np.ndarray, compress: bool = False) -> bytes:
    """A uint8 array in IDX format (type code 0x08)."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    return gzip_module.compress(raw, mtime=0) if compress else raw


def corrupt(path: str | Path, how: str = "truncate", seed: int = 0) -> Path:
    """Damage a file in place: "truncate" keeps the first half, "garble" overwrites 16 bytes
    in the middle with random ones."""
    path = Path(path)
    data = bytearray(path.read_bytes())
    if how == "truncate":
        data = data[: len(data) // 2]
    elif how == "garble":
        rng = np.random.default_rng(seed)
        start = len(data) // 2
        noise = rng.integers(0, 256, min(16, len(data) - start), dtype=np.uint8)
        data[start : start + len(noise)] = noise.tobytes()
    else:
        raise ValueError(f"unknown corruption {how!r}")
    path.write_bytes(bytes(data))
    return path
