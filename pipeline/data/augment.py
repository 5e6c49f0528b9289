"""Classic, label-preserving augmentation (albumentations 2.0), seeded for reproducibility.

Only mild geometric changes and noise: flips and 90-degree turns would change what a digit or
letter means. `Compose(seed=...)` owns its RNG, so the global seed does not reach it.
"""

from __future__ import annotations

import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no network check at import

import albumentations as A  # noqa: E402
import numpy as np  # noqa: E402

from pipeline.data.imageset import ImageSet  # noqa: E402


def classic_transform(seed: int) -> A.Compose:
    return A.Compose(
        [
            A.Affine(
                rotate=(-15, 15),
                translate_percent=(-0.1, 0.1),
                scale=(0.9, 1.1),
                shear=(-10, 10),
                border_mode=0,
                fill=0,
                p=0.9,
            ),
            A.GaussNoise(std_range=(0.02, 0.06), p=0.2),
        ],
        seed=seed,
        strict=True,
    )


def augment_batch(transform: A.Compose, images: np.ndarray) -> np.ndarray:
    """(N, H, W, C) uint8 in, same out: one fresh random draw per image."""
    out = np.empty_like(images)
    for i, image in enumerate(images):
        result = transform(image=image)["image"]
        out[i] = result.reshape(image.shape)
    return out


def classic_copies(data: ImageSet, copies: int, seed: int) -> ImageSet:
    """`copies` albumentations draws of every image, made once (offline) rather than per step."""
    transform = classic_transform(seed)
    images = np.concatenate([augment_batch(transform, data.images) for _ in range(copies)])
    return ImageSet(images, np.tile(data.labels, copies), data.class_names)
