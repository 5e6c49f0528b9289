"""The embedded default: scikit-learn's 1,797 8x8 handwritten digits (shipped, no download)."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits as _sklearn_digits

from pipeline.config import DatasetConfig
from pipeline.data.imageset import ImageSet


def load_digits(cfg: DatasetConfig) -> ImageSet:
    bunch = _sklearn_digits()
    # Pixel values are 0..16 ink counts; scale to the full uint8 range.
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    class_names = tuple(str(name) for name in bunch.target_names)
    return ImageSet(images, bunch.target.astype(np.int64), class_names)
