"""The VAE's training curves as dvclive wrote them (one TSV per metric), read back for the report."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


def read_live_series(plots_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """dvclive's per-epoch TSVs (step, value) mapped to epochs via its epoch.tsv."""
    series = {}
    epoch_of_step = {}
    epoch_file = plots_dir / "epoch.tsv"
    if epoch_file.exists():
        for row in csv.DictReader(epoch_file.open(), delimiter="\t"):
            epoch_of_step[row["step"]] = int(float(row["epoch"])) + 1
    for split in ("train", "val"):
        for tsv in sorted((plots_dir / split).glob("*.tsv")):
            rows = list(csv.DictReader(tsv.open(), delimiter="\t"))
            epochs = np.array([epoch_of_step.get(r["step"], int(r["step"])) for r in rows])
            values = np.array([float(r[next(k for k in r if k not in ("step", "timestamp"))]) for r in rows])
            series[f"{split}/{tsv.stem}"] = (epochs, values)
    return series
