"""Stage: audit every labeled image outside `test` (train, val and pool) with cross-fitted VAEs.

Each image is judged by a VAE that never trained on it (`audit.folds` folds; `test` stays unseen
by every model, this one's too): the importance-weighted bound of log p(x | y) under every label,
a calibrated posterior, label flags at a chosen false-flag rate, an outlier score against the other
images' out-of-fold bounds, and three review queues: `label_rank`, `outlier_rank`, and `rank`
(both in one). Written to one Parquet file (the contract plus the audit columns) and a small
metrics file with the counts, the thresholds and the share of flags to expect on clean labels.
See `pipeline/audit/ranking.py` for the rules and `pipeline/audit/crossfit.py` for the folds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from rich.progress import Progress

from pipeline import lifecycle
from pipeline.atomic import write_json
from pipeline.audit.checks import check_enough_per_class, check_same_kind
from pipeline.audit.crossfit import out_of_fold_bounds
from pipeline.audit.ranking import Audit, assess, log_prior
from pipeline.audit.table import write_audit
from pipeline.config import Params, load_params
from pipeline.data.imageset import ImageSet
from pipeline.data.parquet import read_imageset
from pipeline.errors import cli_guard
from pipeline.models.training import quiet_lightning
from pipeline.stages._cli import stage_parser

SPLITS = ("train", "val", "pool")


def run(params: Params, paths: dict[str, Path], out_path: Path, metrics_path: Path | None, show_progress: bool = False) -> dict:
    """`paths`: {split: Parquet file} for the audited splits (SPLITS; pool may be missing or empty)."""
    if params.trainer.num_threads is not None:
        torch.set_num_threads(params.trainer.num_threads)
    quiet_lightning()
    parts = {name: read_imageset(path) for name, path in paths.items() if name != "pool" or path.exists()}
    first = parts["train"]
    for name, part in parts.items():
        check_same_kind(first, paths["train"], part, paths[name])
    audited = ImageSet(np.concatenate([p.images for p in parts.values()]), np.concatenate([p.labels for p in parts.values()]), first.class_names)
    check_enough_per_class(audited, paths["train"], params.audit.folds)
    split = np.concatenate([np.full(len(p), name, dtype=object) for name, p in parts.items()])
    with Progress(disable=not show_progress, transient=True) as progress:
        task = progress.add_task("audit: fold VAEs", total=params.audit.folds)
        folds = out_of_fold_bounds(audited, params, params.seed, lambda k, n: progress.update(task, completed=k, description=f"audit: fold {k + 1}/{n}"))
    audit = assess(folds.bounds, audited.labels, log_prior(audited.labels, audited.num_classes), params.audit.outlier_z, params.audit.false_flag_share)
    write_audit(out_path, audited, split, audit, folds.fold)
    metrics = summarize(audit, split, params)
    if metrics_path is not None:
        write_json(metrics_path, metrics)
    return metrics


def summarize(audit: Audit, split: np.ndarray, params: Params) -> dict:
    """Counts per split and the thresholds used, rounded so the file reads well in `dvc metrics show`."""
    names = [name for name in SPLITS if (split == name).any()]

    def per_split(values: np.ndarray) -> dict:
        return {name: int(values[split == name].sum()) for name in names} | {"all": int(values.sum())}

    agree = audit.margin <= 0
    return {
        "images": per_split(np.ones(len(split), bool)),
        "flagged_label": per_split(audit.label_flag),
        "flagged_outlier": per_split(audit.outlier_flag),
        # how deep `rank` alternates between the two flagged queues before the unflagged rest
        "queue_head": per_split(audit.label_flag | audit.outlier_flag),
        # the out-of-fold VAEs used as a classifier: share of images whose given label they find likeliest
        "agreement": {name: round(float(agree[split == name].mean()), 4) for name in names} | {"all": round(float(agree.mean()), 4)},
        # the share the label rule would flag if every label followed the calibrated posterior
        "expected_clean_flag_share": round(audit.expected_clean_flag_rate, 4),
        "thresholds": {
            "temperature": round(audit.temperature, 4),
            # a label is flagged when its calibrated probability is at most this (audit.false_flag_share)
            "label_prob": round(audit.label_threshold, 6) if np.isfinite(audit.label_threshold) else None,
            "outlier_z": params.audit.outlier_z,
            "outlier_best_bound": round(audit.outlier_bound, 4),
        },
        "folds": params.audit.folds,
        "steps": params.audit.steps,
        "samples": params.audit.samples,
    }


@cli_guard
@lifecycle.stage
def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(
        __doc__, train="data/processed/train.parquet", val="data/processed/val.parquet", pool="data/processed/pool.parquet",
        out="data/audit/train.parquet", metrics="reports/audit.json",
    )
    args = parser.parse_args(argv)
    params = load_params(args.params)
    metrics = run(params, {"train": args.train, "val": args.val, "pool": args.pool}, args.out, args.metrics, params.trainer.progress_bar)
    flagged, outliers, images = metrics["flagged_label"]["all"], metrics["flagged_outlier"]["all"], metrics["images"]["all"]
    print(
        f"audit: {flagged} of {images} labels flagged as likely wrong ({100 * flagged / images:.1f} %; "
        f"{100 * metrics['expected_clean_flag_share']:.1f} % expected on clean labels), {outliers} images as outliers; wrote {args.out}"
    )


if __name__ == "__main__":
    main()
