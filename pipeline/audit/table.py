"""The audit file: the Parquet contract plus one column per audit result, and its reader.

Rows keep the order of the input files (`train` rows, then `val`, then `pool`, as the `split`
column says), so row i of a split is image i of that split's file; sort by `label_rank` for the
likely wrong labels, by `outlier_rank` for the images no label explains, by `rank` for one queue
of both. `elbo` and `suspect_elbo` are the importance-weighted bounds of log p(x | label) (nats),
`label_prob` the calibrated probability of the given label, `fold` the fold whose VAE (trained on
every other fold) judged the row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.audit.ranking import Audit
from pipeline.data.imageset import ImageSet
from pipeline.data.parquet import ImageParquetWriter, decode_stored, read_metadata
from pipeline.errors import PipelineError

AUDIT_FIELDS = [
    pa.field("split", pa.string()),
    pa.field("fold", pa.int64()),
    pa.field("elbo", pa.float64()),
    pa.field("suspect_label", pa.int64()),
    pa.field("suspect_label_name", pa.string()),
    pa.field("suspect_elbo", pa.float64()),
    pa.field("label_prob", pa.float64()),
    pa.field("margin", pa.float64()),
    pa.field("outlier_score", pa.float64()),
    pa.field("label_flag", pa.bool_()),
    pa.field("outlier_flag", pa.bool_()),
    pa.field("label_rank", pa.int64()),
    pa.field("outlier_rank", pa.int64()),
    pa.field("rank", pa.int64()),
]
QUEUES = ("rank", "label_rank", "outlier_rank")


def write_audit(path: Path, data: ImageSet, split: np.ndarray, audit: Audit, fold: np.ndarray) -> None:
    """One row per image of `data` (the audited splits stacked), written under its final name on success."""
    columns = {
        "split": np.asarray(split, dtype=object),
        "fold": np.asarray(fold, np.int64),
        "elbo": audit.bound,
        "suspect_label": audit.suspect_label,
        "suspect_label_name": np.array([data.class_names[i] for i in audit.suspect_label], dtype=object),
        "suspect_elbo": audit.suspect_bound,
        "label_prob": audit.label_prob,
        "margin": audit.margin,
        "outlier_score": audit.outlier_score,
        "label_flag": audit.label_flag,
        "outlier_flag": audit.outlier_flag,
        "label_rank": audit.label_rank,
        "outlier_rank": audit.outlier_rank,
        "rank": audit.rank,
    }
    with ImageParquetWriter(path, data.class_names, data.image_shape, extra_fields=AUDIT_FIELDS, label_fields=("suspect_label",)) as writer:
        writer.write(data.images, data.labels, columns)


@dataclass(frozen=True)
class Suspects:
    """The top of one review queue, most suspect first (what the report shows)."""

    images: np.ndarray  # (k, H, W, C) uint8
    label_names: list[str]
    suspect_names: list[str]
    label_flag: np.ndarray
    outlier_flag: np.ndarray
    split: list[str]


def read_suspects(path: Path, top: int, by: str = "rank") -> Suspects:
    """The `top` rows of the queue `by` (one of QUEUES), images decoded."""
    if by not in QUEUES:
        raise ValueError(f"no review queue {by!r}; one of {QUEUES}")
    meta = read_metadata(path)
    table = pq.read_table(path)
    missing = [f.name for f in AUDIT_FIELDS if f.name not in table.column_names]
    if missing:
        raise PipelineError(f"{path}: not an audit file (no column {missing[0]!r}); rerun the audit stage")
    table = table.sort_by(by).slice(0, top)
    channels, height, width = meta["image_shape"]
    images = [decode_stored(item["bytes"], channels, path) for item in table.column("image").to_pylist()]
    return Suspects(
        images=np.stack(images) if images else np.zeros((0, height, width, channels), np.uint8),
        label_names=table.column("label_name").to_pylist(),
        suspect_names=table.column("suspect_label_name").to_pylist(),
        label_flag=table.column("label_flag").to_numpy(zero_copy_only=False),
        outlier_flag=table.column("outlier_flag").to_numpy(zero_copy_only=False),
        split=table.column("split").to_pylist(),
    )
