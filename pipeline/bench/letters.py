"""A 28x28 image folder of letters for the audit benchmark, written and split as a user's would be.

Each class is one letter drawn with Pillow's built-in font at a random size, stroke width, slant,
rotation and position, so some genuine images are odd (a thick, tilted, off-centre glyph): the
case where an outlier score competes with the margin for the top of a review queue. The letters
avoid `faults.GLYPHS`, so a foreign glyph is no class of the set. The folder goes through the
preprocess stage's own code (the `image_folder` source, `train_per_class: null`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pipeline.config import DatasetConfig, Params
from pipeline.stages.preprocess import run as preprocess

LETTERS = "BCDGJLNOPS"  # none of faults.GLYPHS
SIZE = 28


def letter(char: str, rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """One jittered white letter on black, drawn at 4x and shrunk: (size, size) uint8."""
    side = 4 * size
    canvas = Image.new("L", (side, side), 0)
    font = ImageFont.load_default(size=int(side * rng.uniform(0.55, 0.85)))
    centre = side / 2 + rng.normal(0, side * 0.05, 2)
    ImageDraw.Draw(canvas).text(tuple(centre), char, fill=255, font=font, anchor="mm", stroke_width=int(rng.integers(0, 5)), stroke_fill=255)
    slant = rng.normal(0, 0.15)
    canvas = canvas.transform(canvas.size, Image.Transform.AFFINE, (1, slant, -slant * side / 2, 0, 1, 0), Image.Resampling.BILINEAR)
    canvas = canvas.rotate(rng.normal(0, 10), Image.Resampling.BILINEAR)
    return np.asarray(canvas.resize((size, size), Image.Resampling.BOX))


def write_letter_folder(root: Path, per_class: int, seed: int = 0) -> Path:
    """`root/<letter>/<letter>_000.png`, ...: `per_class` images of each of LETTERS; returns `root`."""
    rng = np.random.default_rng(seed)
    for char in LETTERS:
        (root / char).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(letter(char, rng)).save(root / char / f"{char}_{i:03d}.png")
    return root


def letter_splits(params: Params, workdir: Path, per_class: int) -> Path:
    """The letters folder split by the preprocess stage (the whole pool kept); returns the folder of splits."""
    folder = write_letter_folder(workdir / "letters", per_class, params.seed)
    dataset = DatasetConfig(source="image_folder", path=str(folder), train_per_class=None)
    out = workdir / "letters_splits"
    preprocess(params.model_copy(update={"dataset": dataset}), out)
    return out
