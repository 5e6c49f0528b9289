"""Stage: audit the real `train` and `val` images with the trained VAE.

For every image: the importance-weighted bound of log p(x | y) under its own label and under every
other, the best other label and the margin between them, and an outlier score; flags and a rank
(1 = most suspect): `label_rank` by margin, `outlier_rank` by outlier score, `rank` both in one
queue. Written to one Parquet file (the contract plus the audit columns) and a small
metrics file with the counts and thresholds. See `pipeline/audit/ranking.py` for the rules.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pipeline import lifecycle
from pipeline.atomic import write_json
from pipeline.audit.checks import check_enough_per_class, check_model_matches
from pipeline.audit.ranking import Audit, assess, log_prior
from pipeline.audit.scores import label_bounds
from pipeline.audit.table import write_audit
from pipeline.config import Params, load_params
from pipeline.data.imageset import ImageSet
from pipeline.data.parquet import read_imageset
from pipeline.errors import cli_guard
from pipeline.models.vae import load_cvae
from pipeline.stages._cli import stage_parser

SPLITS = ("train", "val")


def run(params: Params, model_path: Path, train_path: Path, val_path: Path, out_path: Path, metrics_path: Path | None) -> dict:
    if params.trainer.num_threads is not None:
        torch.set_num_threads(params.trainer.num_threads)
    module = load_cvae(model_path)
    train, val = read_imageset(train_path), read_imageset(val_path)
    shape = (module.hparams.channels, module.hparams.height, module.hparams.width)
    for data, path in ((train, train_path), (val, val_path)):
        check_model_matches(tuple(module.hparams.class_names), shape, model_path, data, path)
    check_enough_per_class(train, train_path)
    both = ImageSet(np.concatenate([train.images, val.images]), np.concatenate([train.labels, val.labels]), train.class_names)
    split = np.array(["train"] * len(train) + ["val"] * len(val))
    cfg = params.audit
    bounds = label_bounds(module.model, both, cfg.samples, params.seed, cfg.batch_size)
    audit = assess(bounds, both.labels, log_prior(train.labels, train.num_classes), split == "train", cfg.margin_threshold, cfg.outlier_z)
    write_audit(out_path, both, split, audit)
    metrics = summarize(audit, split, params)
    if metrics_path is not None:
        write_json(metrics_path, metrics)
    return metrics


def summarize(audit: Audit, split: np.ndarray, params: Params) -> dict:
    """Counts per split and the thresholds used, rounded so the file reads well in `dvc metrics show`."""
    def per_split(values: np.ndarray) -> dict:
        return {name: int(values[split == name].sum()) for name in SPLITS}

    agree = audit.margin <= 0
    return {
        "images": per_split(np.ones(len(split), bool)),
        "flagged_label": per_split(audit.label_flag),
        "flagged_outlier": per_split(audit.outlier_flag),
        # how deep `rank` alternates between the two flagged queues before the unflagged rest
        "queue_head": per_split(audit.label_flag | audit.outlier_flag),
        # the VAE used as a classifier: share of images whose given label it finds likeliest
        "agreement": {name: round(float(agree[split == name].mean()), 4) if (split == name).any() else None for name in SPLITS},
        "thresholds": {
            "margin": params.audit.margin_threshold,
            "outlier_z": params.audit.outlier_z,
            "outlier_best_bound": round(audit.outlier_bound, 4),
        },
        "samples": params.audit.samples,
    }


@cli_guard
@lifecycle.stage
def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(
        __doc__, model="models/cvae.ckpt", train="data/processed/train.parquet", val="data/processed/val.parquet",
        out="data/audit/train.parquet", metrics="reports/audit.json",
    )
    args = parser.parse_args(argv)
    metrics = run(load_params(args.params), args.model, args.train, args.val, args.out, args.metrics)
    print(
        f"audit: {metrics['flagged_label']['train']} train / {metrics['flagged_label']['val']} val images flagged as "
        f"likely mislabelled, {metrics['flagged_outlier']['train']} / {metrics['flagged_outlier']['val']} as outliers; "
        f"wrote {args.out}"
    )


if __name__ == "__main__":
    main()
