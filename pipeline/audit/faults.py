"""Known faults to inject into a clean labeled set, so an audit's hits can be counted.

Two kinds: *flipped labels* (a share of the images get a label drawn uniformly from the other
classes) and *foreign images* appended with a random label: uniform noise, inverted images of the
set itself (same strokes, opposite polarity) and letter glyphs drawn with Pillow's built-in font
(shapes like digits, yet none of them). Seeded, so the benchmark and the tests are repeatable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pipeline.data.images import convert_channels
from pipeline.data.imageset import ImageSet

FOREIGN_KINDS = ("noise", "inverted", "glyph")
GLYPHS = "AEFHKMRWXZ"


@dataclass(frozen=True)
class Faulty:
    """A set with faults injected and where they are."""

    data: ImageSet
    flipped: np.ndarray  # (N,) bool: the label was changed
    outlier: np.ndarray  # (N,) bool: a foreign image (appended after the original rows)
    kind: np.ndarray  # (N,) str: the foreign image's kind (FOREIGN_KINDS), "" for an original row


def flip_labels(labels: np.ndarray, share: float, num_classes: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """round(share * N) labels moved to another class, uniformly; (new labels, flipped mask)."""
    n_flip = int(round(share * len(labels)))
    chosen = rng.choice(len(labels), size=n_flip, replace=False)
    new = labels.copy()
    new[chosen] = (labels[chosen] + rng.integers(1, num_classes, size=n_flip)) % num_classes  # never the same class
    flipped = np.zeros(len(labels), bool)
    flipped[chosen] = True
    return new, flipped


def glyph(letter: str, height: int, width: int) -> np.ndarray:
    """A white letter on black, drawn large then shrunk to (height, width): (H, W) uint8."""
    side = 4 * max(height, width)
    canvas = Image.new("L", (side, side), 0)
    font = ImageFont.load_default(size=int(side * 0.8))
    ImageDraw.Draw(canvas).text((side / 2, side / 2), letter, fill=255, font=font, anchor="mm")
    return np.asarray(canvas.resize((width, height), Image.Resampling.BILINEAR))


def foreign_kinds(n: int) -> np.ndarray:
    """The kind of each of n foreign images: the kinds in turn."""
    return np.array([FOREIGN_KINDS[i % len(FOREIGN_KINDS)] for i in range(n)], dtype=object)


def foreign_images(data: ImageSet, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, H, W, C) uint8 images from other sources, of `foreign_kinds(n)`."""
    _, h, w, c = data.images.shape
    out = []
    for kind in foreign_kinds(n):
        if kind == "noise":
            out.append(rng.integers(0, 256, size=(h, w, c), dtype=np.uint8))
        elif kind == "inverted":
            out.append(255 - data.images[rng.integers(len(data))])
        else:
            out.append(convert_channels(glyph(GLYPHS[rng.integers(len(GLYPHS))], h, w)[..., None], c))
    return np.stack(out) if out else np.zeros((0, h, w, c), np.uint8)


def inject(data: ImageSet, flip_share: float, outlier_share: float, seed: int) -> Faulty:
    """Flip `flip_share` of the labels, then append round(outlier_share * N) foreign images."""
    rng = np.random.default_rng(seed)
    labels, flipped = flip_labels(data.labels, flip_share, data.num_classes, rng)
    n_out = int(round(outlier_share * len(data)))
    foreign = foreign_images(data, n_out, rng)
    images = np.concatenate([data.images, foreign])
    labels = np.concatenate([labels, rng.integers(0, data.num_classes, size=n_out)])
    outlier = np.concatenate([np.zeros(len(data), bool), np.ones(n_out, bool)])
    kind = np.concatenate([np.full(len(data), "", dtype=object), foreign_kinds(n_out)])
    return Faulty(ImageSet(images, labels, data.class_names), np.concatenate([flipped, np.zeros(n_out, bool)]), outlier, kind)
