"""Stage 4: the learning curve of every augmentation arm, with confidence intervals over seeds.

For each training size and seed (`evaluate.train_sizes` x `evaluate.seeds`) one cell runs (see
`pipeline/evaluation/cell.py`). Writes `reports/metrics.json` (flat keys for `dvc metrics diff`),
the plot tables under `reports/plots/` and every per-seed number in `reports/evaluation.json`.
Killed part-way? Rerun: the cells already finished are kept in `models/.resume/evaluate/`.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from pipeline import lifecycle
from pipeline.atomic import write_json, write_text
from pipeline.config import Params, load_params
from pipeline.data.parquet import read_imageset
from pipeline.errors import cli_guard
from pipeline.evaluation import learning_curve, scenarios
from pipeline.evaluation.arms import ARMS, Arm
from pipeline.evaluation.cell import Splits
from pipeline.evaluation.cell_cache import CellCache
from pipeline.stages._cli import stage_parser


def run(params: Params, data_dir: Path, reports_dir: Path, show_progress: bool = True, cache_dir: Path | None = None) -> dict:
    """`cache_dir`: where finished cells wait for a rerun if this one is killed (`cell_cache.py`)."""
    splits = Splits(*(read_imageset(data_dir / f"{name}.parquet") for name in ("pool", "val", "test")))
    cache = CellCache(cache_dir, (splits.pool, splits.val, splits.test), params) if cache_dir else None
    cells, full = learning_curve.run(splits, params, show_progress, cache)
    arms = run_arms(params)
    summary = learning_curve.summarize(cells, full, params.evaluate.train_sizes, arms)
    write_outputs(summary, cells, full, reports_dir, arms)
    if cache:
        cache.clear()
    return summary


def run_arms(params: Params) -> tuple[Arm, ...]:
    return scenarios.get(params.evaluate.scenario).arms(params.evaluate)


def write_outputs(summary: dict, cells: list[dict], full: list[dict], reports_dir: Path, arms: tuple[Arm, ...] = ARMS) -> None:
    write_json(reports_dir / "metrics.json", summary)
    write_json(reports_dir / "evaluation.json", {"per_class_acc": learning_curve.per_class_means(cells, arms), "cells": cells, "full": full})
    for name, rows in learning_curve.plot_tables(summary, cells, arms).items():
        write_text(reports_dir / "plots" / f"{name}.csv", to_csv(rows))


def to_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in row.items()})
    return buffer.getvalue()


@cli_guard
@lifecycle.stage
def main(argv: list[str] | None = None) -> None:
    args = stage_parser(__doc__, data_dir="data/processed", reports_dir="reports", cache_dir="models/.resume/evaluate").parse_args(argv)
    params = load_params(args.params)
    summary = run(params, args.data_dir, args.reports_dir, params.trainer.progress_bar, args.cache_dir)
    key = scenarios.get(params.evaluate.scenario).headline
    for size in params.evaluate.train_sizes:
        block = summary[f"n{size}"]
        print(f"n={size}: " + ", ".join(f"{arm.name} {block[arm.name][key]:.3f}" for arm in run_arms(params)))


if __name__ == "__main__":
    main()
