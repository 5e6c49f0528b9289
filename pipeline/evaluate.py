"""Stage 4: the learning curve of every augmentation arm, with confidence intervals over seeds.

For each training size and seed (`evaluate.train_sizes` x `evaluate.seeds`) one cell runs
(see `protocol.py`); this module loops over the cells, aggregates them with `stats` and writes
`reports/metrics.json` (flat keys for `dvc metrics diff`), the plot tables under
`reports/plots/` and every per-seed number in `reports/evaluation.json`.
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

import numpy as np
from rich.progress import Progress

from pipeline import stats
from pipeline.atomic import write_json, write_text
from pipeline.config import Params, load_params
from pipeline.errors import cli_guard
from pipeline.parquet import read_imageset
from pipeline.protocol import ARMS, Splits, run_cell, run_full

GAINS = {  # arm -> the baseline its gain is measured against
    "real_classic": "real",
    "real_vae": "real",
    "real_classic_vae": "real",
}
VS_CLASSIC = ("real_vae", "real_classic_vae")
QUALITY_KEYS = ("label_fidelity", "fd", "precision", "recall", "density", "coverage", "memorisation_ratio", "near_copy_rate")


def run(params: Params, data_dir: Path, reports_dir: Path, show_progress: bool = True) -> dict:
    splits = Splits(*(read_imageset(data_dir / f"{name}.parquet") for name in ("pool", "val", "test")))
    cfg = params.evaluate
    cells, full = [], []
    total = len(cfg.train_sizes) * len(cfg.seeds) + len(cfg.seeds)
    with Progress(disable=not show_progress) as progress:
        task = progress.add_task("evaluate", total=total)
        for size in cfg.train_sizes:
            for seed in cfg.seeds:
                progress.update(task, description=f"evaluate n={size} seed={seed}")
                cells.append(run_cell(splits, size, seed, params))
                progress.advance(task)
        for seed in cfg.seeds:
            progress.update(task, description=f"evaluate full seed={seed}")
            full.append(run_full(splits, seed, params))
            progress.advance(task)
    summary = summarize(cells, full, cfg.train_sizes)
    write_outputs(summary, cells, full, reports_dir)
    return summary


def _interval(prefix: str, interval: stats.Interval) -> dict:
    return {f"{prefix}_mean": interval.mean, f"{prefix}_lo": interval.lo, f"{prefix}_hi": interval.hi}


def summarize(cells: list[dict], full: list[dict], sizes: list[int]) -> dict:
    """Nested metrics: {"n10": {"real_vae": {"acc_mean": ..., "gain_acc_mean": ...}}, "full": ...}."""
    full_acc = [f["acc"] for f in full]
    out: dict = {"full": {**_interval("acc", stats.mean_ci(full_acc)), **_interval("f1", stats.mean_ci([f["f1"] for f in full]))}}
    for size in sizes:
        group = sorted((c for c in cells if c["size"] == size), key=lambda c: c["seed"])
        acc = {arm: [c["scores"][arm]["acc"] for c in group] for arm in ARMS}
        block: dict = {}
        for arm in ARMS:
            f1 = [c["scores"][arm]["f1"] for c in group]
            entry = {**_interval("acc", stats.mean_ci(acc[arm])), **_interval("f1", stats.mean_ci(f1))}
            if arm in GAINS:
                entry.update(_interval("gain", stats.paired_gain(acc[arm], acc[GAINS[arm]])))
                entry["gap_closed"] = stats.gap_closed(float(np.mean(acc[arm])), float(np.mean(acc["real"])), float(np.mean(full_acc)))
            if arm in VS_CLASSIC:
                entry.update(_interval("gain_vs_classic", stats.paired_gain(acc[arm], acc["real_classic"])))
            block[arm] = entry
        block["quality"] = {key: stats.mean_ci([c["quality"][key] for c in group]).mean for key in QUALITY_KEYS}
        out[f"n{size}"] = block
    return out


def per_class_means(cells: list[dict]) -> dict:
    """{"n10": {"real": [mean accuracy of class 0, ...]}}: which classes an arm helps or hurts."""
    out: dict = {}
    for size in sorted({c["size"] for c in cells}):
        group = [c for c in cells if c["size"] == size]
        out[f"n{size}"] = {arm: np.nanmean([c["scores"][arm]["per_class"] for c in group], axis=0).tolist() for arm in ARMS}
    return out


def write_outputs(summary: dict, cells: list[dict], full: list[dict], reports_dir: Path) -> None:
    write_json(reports_dir / "metrics.json", summary)
    write_json(reports_dir / "evaluation.json", {"per_class_acc": per_class_means(cells), "cells": cells, "full": full})
    sizes = sorted({c["size"] for c in cells})
    curve = [{"train_size": s, **{arm: summary[f"n{s}"][arm]["acc_mean"] for arm in ARMS}, "full": summary["full"]["acc_mean"]} for s in sizes]
    gains = [{"train_size": s, **{arm: summary[f"n{s}"][arm]["gain_mean"] for arm in GAINS}} for s in sizes]
    results = [
        {"train_size": c["size"], "seed": c["seed"], "arm": arm, "acc": c["scores"][arm]["acc"], "f1": c["scores"][arm]["f1"]}
        for c in cells
        for arm in ARMS
    ]
    for name, rows in (("learning_curve", curve), ("gains", gains), ("results", results)):
        write_text(reports_dir / "plots" / f"{name}.csv", to_csv(rows))


def to_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in row.items()})
    return buffer.getvalue()


@cli_guard
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data-dir", type=Path, default=Path("data/processed"))
    parser.add_argument("--reports-dir", type=Path, default=Path("reports"))
    args = parser.parse_args(argv)
    params = load_params(args.params)
    summary = run(params, args.data_dir, args.reports_dir, params.trainer.progress_bar)
    for size in params.evaluate.train_sizes:
        block = summary[f"n{size}"]
        print(f"n={size}: " + ", ".join(f"{arm} {block[arm]['acc_mean']:.3f}" for arm in ARMS))


if __name__ == "__main__":
    main()
