"""Look inside a dataset file: rows per class and source, provenance, quality scores, a sample grid.

With `--quality --real FILE` the file's images are also measured as samples against real images,
as the learning curve measures its samples (`quality.sample_quality`, the standard suite per
class included): in the features of an assessor CNN trained on real images. With `--holdout FILE`
(real images the generator never saw, e.g. val.parquet) the assessor trains on one half of them
and the other half is the reference, so no image the generator or the assessor saw is compared
with; without it the assessor trains on, and compares with, the `--real` images, and the
metrics that need unseen images (memorisation ratio, identifiability) are not given.

Counts come from the small label/source/provenance columns read batch by batch, so a file of a
million rows costs megabytes, not the gigabytes its PNGs would; only the images shown in the grid
are decoded, read from just the row groups that hold them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw, ImageFont
from rich.console import Console
from rich.table import Table

from pipeline.atomic import atomic_path, to_plain
from pipeline.data.images import auto_scale, tile
from pipeline.data.parquet import decode_stored, iter_batches, read_metadata
from pipeline.errors import PipelineError, cli_guard
from pipeline.tools._cli import positive_int, tool_parser

PROVENANCE = ("checkpoint", "strategy", "temperature", "seed")
QUALITY = ("confidence", "nn_distance")
SHOWN_UNIQUE = 20  # provenance values listed per column; `count` tells when there are more


class FileSummary:
    """Running counts over batches: memory grows with classes and unique values, not with rows."""

    def __init__(self, class_names: list[str], columns: list[str], per_class: int) -> None:
        self.names, self.per_class, self.rows = class_names, per_class, 0
        self.counts: dict[str, np.ndarray] = {}
        self.uniques = {c: set() for c in PROVENANCE if c in columns}
        self.scores: dict[str, list[np.ndarray]] = {c: [] for c in QUALITY if c in columns}
        self.picks: dict[int, list[int]] = {k: [] for k in range(len(class_names))}  # grid rows

    def add(self, batch: pa.RecordBatch) -> None:
        labels = batch.column("label").to_numpy()
        sources = np.asarray(batch.column("source").to_pylist(), dtype=object)
        for source in set(sources):
            found = np.bincount(labels[sources == source], minlength=len(self.names))
            self.counts[source] = self.counts.get(source, 0) + found
        for name, values in self.uniques.items():
            values.update(batch.column(name).unique().to_pylist())
        for name, chunks in self.scores.items():
            chunks.append(batch.column(name).to_numpy(zero_copy_only=False).astype(float))  # null -> NaN
        for k, rows in self.picks.items():
            rows.extend(self.rows + np.flatnonzero(labels == k)[: self.per_class - len(rows)])
        self.rows += len(labels)

    def summary(self, path: Path, image_shape: list[int]) -> dict:
        return {
            "file": str(path),
            "rows": self.rows,
            "image_shape": image_shape,
            "class_names": self.names,
            "rows_per_source": {s: int(c.sum()) for s, c in sorted(self.counts.items())},
            "rows_per_class": {n: {s: int(c[k]) for s, c in sorted(self.counts.items())} for k, n in enumerate(self.names)},
            "provenance": {c: _unique(v) for c, v in self.uniques.items()},
            "quality": {c: _spread(np.concatenate(v) if v else np.zeros(0)) for c, v in self.scores.items()},
        }


def _unique(values: set) -> dict:
    ordered = sorted(values, key=lambda v: (v is None, v))
    return {"unique": ordered[:SHOWN_UNIQUE], "count": len(ordered)}


def _spread(values: np.ndarray) -> dict:
    """min/median/max of the finite values; NaN means "not scored" (e.g. no confidence filter)."""
    finite = values[~np.isnan(values)]
    stats = [float(f(finite)) if len(finite) else None for f in (np.min, np.median, np.max)]
    return {"min": stats[0], "median": stats[1], "max": stats[2], "nan": int(len(values) - len(finite))}


def read_picks(path: Path, picks: dict[int, list[int]], channels: int) -> dict[int, list[np.ndarray]]:
    """Decode the chosen rows, reading only the row groups that hold them."""
    parquet = pq.ParquetFile(path)
    starts = np.cumsum([0] + [parquet.metadata.row_group(g).num_rows for g in range(parquet.num_row_groups)])
    wanted = sorted((row, k) for k, rows in picks.items() for row in rows)
    groups = np.searchsorted(starts, [row for row, _ in wanted], side="right") - 1
    images: dict[int, list[np.ndarray]] = {k: [] for k in picks}
    for group in np.unique(groups):
        column = parquet.read_row_group(int(group), columns=["image"]).column("image")
        for (row, k), g in zip(wanted, groups):
            if g == group:
                images[k].append(decode_stored(column[int(row - starts[g])]["bytes"].as_py(), channels, path))
    return images


def grid(images: dict[int, list[np.ndarray]], names: list[str], image_shape: list[int], per_class: int) -> Image.Image:
    """One row per class, white where a class has fewer than `per_class` images, names on the left."""
    c, h, w = image_shape
    blank = np.full((h, w, c), 255, np.uint8)
    rows = [images[k] + [blank] * (per_class - len(images[k])) for k in range(len(names))]
    scale = auto_scale(h)
    picture = tile(rows, scale=scale)
    font = ImageFont.load_default()
    margin = int(max(font.getlength(name[:24]) for name in names)) + 8
    labelled = Image.new(picture.mode, (picture.width + margin, picture.height), "white")
    labelled.paste(picture, (margin, 0))
    draw = ImageDraw.Draw(labelled)
    for k, name in enumerate(names):
        draw.text((margin - 4, scale * (1 + k * (h + 1) + h / 2)), name[:24], fill="black", font=font, anchor="rm")
    return labelled


def summarize_file(path: Path, grid_path: Path, per_class: int) -> dict:
    """Stream the file once for the summary, then decode only the grid's images and save it."""
    meta = read_metadata(path)
    columns = pq.read_schema(path).names
    tally = FileSummary(meta["class_names"], columns, per_class)
    wanted = ["label", "source", *tally.uniques, *tally.scores]
    for batch in iter_batches(path, columns=wanted):
        tally.add(batch)
    summary = tally.summary(path, meta["image_shape"])
    images = read_picks(path, tally.picks, meta["image_shape"][0])
    with atomic_path(grid_path) as tmp:
        grid(images, meta["class_names"], meta["image_shape"], per_class).save(tmp, format="PNG")
    return {**summary, "grid": str(grid_path)}


def render(summary: dict, console: Console) -> None:
    c, h, w = summary["image_shape"]
    console.print(f"[bold]{summary['file']}[/]: {summary['rows']} rows, images {h}x{w}x{c}, {len(summary['class_names'])} classes")
    sources = list(summary["rows_per_source"])
    table = Table("label", "class", *sources, title="Rows per class and source")
    for k, (name, counts) in enumerate(summary["rows_per_class"].items()):
        table.add_row(str(k), name, *(str(counts[s]) for s in sources))
    console.print(table)
    if summary["provenance"]:
        prov = Table("column", "unique values", "count", title="Provenance")
        for column, info in summary["provenance"].items():
            more = " …" if info["count"] > len(info["unique"]) else ""
            prov.add_row(column, ", ".join(map(str, info["unique"])) + more, str(info["count"]))
        console.print(prov)
    if summary["quality"]:
        quality = Table("score", "min", "median", "max", "NaN rows", title="Quality scores")
        for column, s in summary["quality"].items():
            quality.add_row(column, *("—" if s[k] is None else f"{s[k]:.4g}" for k in ("min", "median", "max")), str(s["nan"]))
        console.print(quality)
    console.print(f"sample grid (one row per class, in label order): {summary['grid']}")


def sample_quality_of(path: Path, real_path: Path, holdout_path: Path | None, params_path: Path, seed: int) -> dict:
    """`quality.sample_quality` of the file's images against real ones (see the module doc)."""
    from pipeline.config import load_params  # torch and the models: only for --quality
    from pipeline.data.parquet import read_imageset
    from pipeline.evaluation.assessor import fit_assessor
    from pipeline.evaluation.quality import sample_quality
    from pipeline.models.training import single_device

    params = load_params(params_path)
    synthetic, real = read_imageset(path), read_imageset(real_path)
    for other, name in ((real, "--real"), *(((read_imageset(holdout_path), "--holdout"),) if holdout_path else ())):
        if other.image_shape != synthetic.image_shape or other.class_names != synthetic.class_names:
            raise PipelineError(f"{name}: images {other.image_shape} of classes {list(other.class_names)} do not match {path}'s "
                                f"{synthetic.image_shape} of {list(synthetic.class_names)}")
    if holdout_path:
        holdout = read_imageset(holdout_path)
        order = np.random.default_rng(seed).permutation(len(holdout))
        assessor_rows, reference = holdout.subset(np.sort(order[0::2])), holdout.subset(np.sort(order[1::2]))
    else:
        assessor_rows = reference = real
    assessor = fit_assessor(assessor_rows, params.evaluate, single_device(params.trainer), seed)
    quality = sample_quality(synthetic, real, reference, assessor, seed)
    if not holdout_path:  # the reference is the training images themselves: these say nothing
        quality.update(memorisation_ratio=float("nan"), near_copy_rate=float("nan"), identifiability=float("nan"), assessor_accuracy=float("nan"))
        quality["per_class"]["identifiability"] = [float("nan")] * real.num_classes
    return {"real": str(real_path), "holdout": str(holdout_path) if holdout_path else None, "seed": seed, **quality}


def render_sample_quality(quality: dict, class_names: list[str], console: Console) -> None:
    from pipeline.reporting.quality_section import QUALITY_INFO  # matplotlib: only for --quality

    against = f"{quality['real']}" + (f", unseen: {quality['holdout']}" if quality["holdout"] else " (no --holdout: unseen-image metrics not given)")
    table = Table("metric", "value", "better", "what it measures", title=f"Sample quality against {against}")
    for key, (name, meaning, better) in QUALITY_INFO.items():
        value = quality.get(key)
        table.add_row(name, "—" if value is None or np.isnan(value) else f"{value:.3f}", better, meaning)
    console.print(table)
    per_class = quality["per_class"]
    keys = [k for k in QUALITY_INFO if k in per_class]
    classes = Table("class", *(QUALITY_INFO[k][0] for k in keys), title="The standard suite per class")
    for i, name in enumerate(class_names):
        classes.add_row(name, *("—" if np.isnan(per_class[k][i]) else f"{per_class[k][i]:.3f}" for k in keys))
    console.print(classes)


@cli_guard
def main(argv: list[str] | None = None) -> None:
    parser = tool_parser("pipeline.tools.summarize", __doc__, """examples:
  python -m pipeline.tools.summarize data/processed/train.parquet
  python -m pipeline.tools.summarize data/synthetic/train.parquet --per-class 12 --grid /tmp/synthetic.png
  python -m pipeline.tools.summarize data/synthetic/train.parquet --json | jq .quality
  python -m pipeline.tools.summarize data/synthetic/train.parquet --quality --real data/processed/train.parquet --holdout data/processed/val.parquet""",
    )
    parser.add_argument("file", type=Path, help="a Parquet file of the pipeline (data/processed/*.parquet or data/synthetic/*.parquet)")
    parser.add_argument("--grid", type=Path, help="where to write the sample grid PNG (default: <file stem>_grid.png next to the file)")
    parser.add_argument("--per-class", type=positive_int, default=8, metavar="N", help="images per class in the grid (default 8)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object instead of tables")
    parser.add_argument("--quality", action="store_true", help="also measure the file's images as samples against real images (needs --real)")
    parser.add_argument("--real", type=Path, help="--quality: the real images the generator trained on (e.g. data/processed/train.parquet)")
    parser.add_argument("--holdout", type=Path, help="--quality: real images the generator never saw (e.g. data/processed/val.parquet)")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="--quality: the assessor CNN's training settings (default params.yaml)")
    parser.add_argument("--seed", type=int, default=0, help="--quality: seed of the assessor and the detection folds (default 0)")
    args = parser.parse_args(argv)
    if args.quality and args.real is None:
        raise PipelineError("--quality needs --real FILE: the real images to compare with")
    grid_path = args.grid or args.file.with_name(f"{args.file.stem}_grid.png")
    summary = summarize_file(args.file, grid_path, args.per_class)
    if args.quality:
        summary["sample_quality"] = sample_quality_of(args.file, args.real, args.holdout, args.params, args.seed)
    if args.json:
        print(json.dumps(to_plain(summary), allow_nan=False))
    else:
        render(summary, Console())
        if args.quality:
            render_sample_quality(summary["sample_quality"], summary["class_names"], Console())


if __name__ == "__main__":
    main()
