"""The in-memory form every stage works on: uint8 images, int64 labels, class names."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ImageSet:
    images: np.ndarray  # (N, H, W, C) uint8, C in {1, 3}
    labels: np.ndarray  # (N,) int64, values index class_names
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[-1] not in (1, 3):
            raise ValueError(f"images must be (N, H, W, 1|3), got {self.images.shape}")
        if self.images.dtype != np.uint8:
            raise ValueError(f"images must be uint8, got {self.images.dtype}")
        if self.labels.shape != (len(self.images),):
            raise ValueError("labels must be one per image")
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise ValueError("labels must index class_names")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W), the order torch wants."""
        _, h, w, c = self.images.shape
        return c, h, w

    def subset(self, index: np.ndarray) -> ImageSet:
        return ImageSet(self.images[index], self.labels[index], self.class_names)

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=self.num_classes)

    def as_float(self) -> np.ndarray:
        """(N, C, H, W) float32 in [0, 1]: decoded once, fed to torch as is."""
        return np.ascontiguousarray(self.images.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0
