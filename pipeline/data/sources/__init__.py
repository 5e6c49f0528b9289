"""Dataset sources: each turns `dataset.*` params into one in-memory `ImageSet`.

`load_dataset` dispatches on `dataset.source`, then applies the options every source shares
(`image_size`, `channels`, `class_names`), so a loader only has to read its own format.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pipeline.config import DatasetConfig
from pipeline.data.images import convert_channels, resize_image
from pipeline.data.imageset import ImageSet
from pipeline.data.sources.csv_source import load_csv
from pipeline.data.sources.digits import load_digits
from pipeline.data.sources.idx_source import load_idx
from pipeline.data.sources.image_folder import load_image_folder
from pipeline.data.sources.npz_source import load_npz
from pipeline.data.sources.parquet_source import load_parquet
from pipeline.errors import PipelineError

Loader = Callable[[DatasetConfig], ImageSet]
LOADERS: dict[str, Loader] = {
    "sklearn_digits": load_digits,
    "image_folder": load_image_folder,
    "parquet": load_parquet,
    "csv": load_csv,
    "npz": load_npz,
    "idx": load_idx,
}


def load_dataset(cfg: DatasetConfig) -> ImageSet:
    try:
        loader = LOADERS[cfg.source]
    except KeyError:
        raise PipelineError(f"dataset.source: unknown source {cfg.source!r}") from None
    return conform(loader(cfg), cfg)


def conform(data: ImageSet, cfg: DatasetConfig) -> ImageSet:
    """Apply the shared options and check what every later stage relies on."""
    images = data.images
    if len(images) == 0:
        raise PipelineError("dataset: no images")
    if cfg.channels is not None:
        images = convert_channels(images, cfg.channels)
    if cfg.image_size is not None and images.shape[1:3] != (cfg.image_size, cfg.image_size):
        images = np.stack([resize_image(image, cfg.image_size) for image in images])
    h, w = images.shape[1:3]
    if not 8 <= min(h, w) or max(h, w) > 64:
        raise PipelineError(
            f"dataset: images are {h}x{w}; the pipeline handles 8x8 to 64x64 "
            "(set dataset.image_size to resize)"
        )
    class_names = data.class_names
    if cfg.class_names is not None:
        if len(cfg.class_names) != data.num_classes:
            raise PipelineError(
                f"dataset.class_names: {len(cfg.class_names)} names given, "
                f"the data has {data.num_classes} classes"
            )
        class_names = tuple(cfg.class_names)
    if len(set(class_names)) != len(class_names):
        raise PipelineError(f"dataset.class_names: names repeat ({', '.join(class_names)})")
    counts = data.class_counts()
    if data.num_classes < 2 or np.count_nonzero(counts) < 2:
        raise PipelineError(f"dataset: found {np.count_nonzero(counts)} class(es); need at least 2")
    if not counts.all():
        empty = ", ".join(repr(class_names[i]) for i in np.flatnonzero(counts == 0))
        raise PipelineError(f"dataset: class(es) {empty} have no images")
    return ImageSet(np.ascontiguousarray(images), data.labels, class_names)

