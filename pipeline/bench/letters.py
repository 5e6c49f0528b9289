"""A 28x28 image folder of letters for the audit benchmark, written and split as a user's would be.

Each class is one letter drawn with Pillow's built-in font at a random size, stroke width, slant,
rotation and position, so some genuine images are odd (a thick, tilted, off-centre glyph): the
case where an outlier score competes with the margin for the top of a review queue. The letters
avoid `faults.GLYPHS`, so a foreign glyph is no class of the set. The folder goes through the
preprocess stage's own code (the `image_folder` source, `train_per_class: null`).

`hard=True` draws the development set of issue #27: the same letters with much stronger
variation in size, stroke, slant, rotation and position, dimmed ink, scratches across the glyph, a
cut-out patch and pixel noise, so that 10 images per class are far from enough for the
pipeline's CNN (`python -m pipeline.bench.letters --hard OUT` writes it as an image folder).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pipeline.config import DatasetConfig, Params
from pipeline.stages.preprocess import run as preprocess
from pipeline.tools._cli import positive_int

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


def hard_letter(char: str, rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """One letter as `letter` draws it, varied much more and degraded: (size, size) uint8."""
    side = 4 * size
    canvas = Image.new("L", (side, side), 0)
    pen = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=int(side * rng.uniform(0.55, 0.9)))
    centre = side / 2 + rng.normal(0, side * 0.05, 2)
    ink = int(rng.integers(140, 256))
    pen.text(tuple(centre), char, fill=ink, font=font, anchor="mm", stroke_width=int(rng.integers(0, 6)), stroke_fill=ink)
    for _ in range(int(rng.integers(0, 3))):  # scratches: strokes that belong to no letter
        ends = rng.uniform(0, side, 4)
        pen.line(tuple(ends), fill=int(rng.integers(60, 130)), width=int(rng.integers(2, 5)))
    if rng.random() < 0.15:  # a cut-out patch hides part of the glyph
        corner = rng.uniform(0, side * 0.75, 2)
        extent = rng.uniform(side * 0.1, side * 0.25, 2)
        pen.rectangle((*corner, *(corner + extent)), fill=0)
    slant = rng.normal(0, 0.2)
    canvas = canvas.transform(canvas.size, Image.Transform.AFFINE, (1, slant, -slant * side / 2, 0, 1, 0), Image.Resampling.BILINEAR)
    canvas = canvas.rotate(rng.normal(0, 10), Image.Resampling.BILINEAR)
    image = np.asarray(canvas.resize((size, size), Image.Resampling.BOX), dtype=np.float64)
    image += rng.normal(0, rng.uniform(0, 20), image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_letter_folder(root: Path, per_class: int, seed: int = 0, hard: bool = False) -> Path:
    """`root/<letter>/<letter>_000.png`, ...: `per_class` images of each of LETTERS; returns `root`."""
    rng = np.random.default_rng(seed)
    draw = hard_letter if hard else letter
    for char in LETTERS:
        (root / char).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(draw(char, rng)).save(root / char / f"{char}_{i:03d}.png")
    return root


def letter_splits(params: Params, workdir: Path, per_class: int, hard: bool = False) -> Path:
    """The letters folder split by the preprocess stage (the whole pool kept); returns the folder of splits."""
    folder = write_letter_folder(workdir / ("hard_letters" if hard else "letters"), per_class, params.seed, hard)
    dataset = DatasetConfig(source="image_folder", path=str(folder), train_per_class=None)
    out = workdir / ("hard_letters_splits" if hard else "letters_splits")
    preprocess(params.model_copy(update={"dataset": dataset}), out)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.bench.letters",
        description="Write the letters image folder (28x28, 10 classes) for dataset.source: image_folder.",
    )
    parser.add_argument("out", type=Path, help="the folder to write (one sub-folder per letter)")
    parser.add_argument("--per-class", type=positive_int, default=100, help="images per letter (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="the same seed writes the same bytes (default 0)")
    parser.add_argument("--hard", action="store_true", help="the hard variant (issue #27): 10 per class are far from enough")
    args = parser.parse_args(argv)
    write_letter_folder(args.out, args.per_class, args.seed, args.hard)
    print(f"{args.out}: {args.per_class} images of each of {len(LETTERS)} letters")


if __name__ == "__main__":
    main()
