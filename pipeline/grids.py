"""Tile images into one picture: sample grids for dvclive, the report and `inspect`."""

from __future__ import annotations

import numpy as np
from PIL import Image


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


def to_uint8(images) -> np.ndarray:
    """(N, C, H, W) floats in [0, 1] (tensor or array) to (N, H, W, C) uint8."""
    array = images.detach().cpu().numpy() if hasattr(images, "detach") else np.asarray(images)
    return np.clip(np.rint(array.transpose(0, 2, 3, 1) * 255.0), 0, 255).astype(np.uint8)


def auto_scale(height: int, target: int = 48) -> int:
    """Enlarge tiny images (8x8 digits) so a grid is readable without squinting."""
    return max(1, target // height)
