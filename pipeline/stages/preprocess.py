"""Stage 1: load the source dataset and write stratified Parquet splits.

Writes `test`, `val`, the training `pool` (what the learning curve and the `full` arm draw
from) and `train`, the default small training set of `dataset.train_per_class` per class.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline import lifecycle
from pipeline.atomic import write_json
from pipeline.config import Params, load_params
from pipeline.data.imageset import ImageSet
from pipeline.data.parquet import write_imageset, write_unlabeled
from pipeline.data.sources import load_dataset
from pipeline.data.sources.unlabeled import load_unlabeled
from pipeline.data.splits import per_class_subset, split_test_val_pool
from pipeline.errors import cli_guard
from pipeline.stages._cli import stage_parser

SPLITS = ("train", "val", "test", "pool")


def run(params: Params, out_dir: Path, summary_path: Path | None = None) -> dict:
    cfg = params.dataset
    data = load_dataset(cfg)
    test, val, pool = split_test_val_pool(
        data.labels, cfg.test_fraction, cfg.val_fraction, params.seed, data.class_names
    )
    pool_set = data.subset(pool)
    train_index = per_class_subset(
        pool_set.labels, cfg.train_per_class, params.seed, data.class_names, "dataset.train_per_class"
    )
    splits = {
        "train": pool_set.subset(train_index),
        "val": data.subset(val),
        "test": data.subset(test),
        "pool": pool_set,
    }
    unlabeled = unlabeled_images(params, pool_set, train_index)
    for name, split in splits.items():
        write_imageset(out_dir / f"{name}.parquet", split)
    write_unlabeled(out_dir / "unlabeled.parquet", unlabeled, data.class_names)
    summary = fingerprint(splits)
    if len(unlabeled):  # only then, so a run without unlabeled data keeps its summary as it was
        summary["rows"]["unlabeled"] = len(unlabeled)
    if summary_path is not None:
        write_json(summary_path, summary)
    return summary


def unlabeled_images(params: Params, pool: ImageSet, train_index: np.ndarray) -> np.ndarray:
    """(N, H, W, C) images whose labels no model reads: from `dataset.unlabeled_path`, or drawn
    per class from the pool images outside `train` (null per class = all of them)."""
    cfg = params.dataset
    if cfg.unlabeled_path:
        return load_unlabeled(cfg, pool)
    rest = np.setdiff1d(np.arange(len(pool)), train_index)
    if cfg.unlabeled_per_class == 0:
        rest = rest[:0]
    elif cfg.unlabeled_per_class is not None:
        rest = rest[per_class_subset(
            pool.labels[rest], cfg.unlabeled_per_class, params.seed + 1, pool.class_names, "dataset.unlabeled_per_class"
        )]
    return pool.images[rest]


def fingerprint(splits: dict[str, ImageSet]) -> dict:
    """What a report needs to say what data it is about: sizes, balance, shape."""
    any_split = next(iter(splits.values()))
    c, h, w = any_split.image_shape
    return {
        "image_shape": [c, h, w],
        "class_names": list(any_split.class_names),
        "rows": {name: len(split) for name, split in splits.items()},
        "class_counts": {name: split.class_counts().tolist() for name, split in splits.items()},
    }


@cli_guard
@lifecycle.stage
def main(argv: list[str] | None = None) -> None:
    args = stage_parser(__doc__, out_dir="data/processed", summary="reports/data.json").parse_args(argv)
    summary = run(load_params(args.params), args.out_dir, args.summary)
    print(f"preprocess: {summary['rows']} rows, image shape {summary['image_shape']}")


if __name__ == "__main__":
    main()
