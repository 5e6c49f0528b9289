"""Which kernels the pipeline's own work runs: `python -m tests.kernel_probe WORKDIR`.

Runs a tiny `train_vae`, one learning-curve cell and the audit on the digits (8x8), and a tiny
`train_vae` and cell on generated 28x28 images (other layouts and layers), all under
`torch.profiler`; writes their outputs under WORKDIR (the cells' records as `cell.json`) and
prints the names of the torch ops executed as one JSON line last. Run it
with `ONEDNN_VERBOSE=1`: oneDNN then prints a line for every primitive it executes, so a test can
see from outside whether oneDNN was in the path, and from the JSON whether NNPACK was.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pipeline  # noqa: F401  - the kernel pin, as every stage has it
from torch.profiler import ProfilerActivity, profile

from pipeline.config import parse_params
from pipeline.data.parquet import read_imageset
from pipeline.evaluation.cell import Splits, run_cell
from pipeline.stages import audit, preprocess, train_vae
from tests.datagen import make_npz

TINY = {
    "dataset": {"train_per_class": 3},
    "trainer": {"progress_bar": False, "num_threads": 1},
    "vae": {"epochs": 2, "val_every_n_epochs": 1, "early_stopping_patience": 0, "sample_every_n_epochs": 0, "hidden_channels": 8},
    "generate": {"batch_size": 64},
    "evaluate": {"seeds": [0], "train_sizes": [3], "steps": 4, "classic_copies": 1, "budget": 2},
    "audit": {"samples": 4, "folds": 2, "steps": 5},
}


def work(root: Path, dataset: dict, with_audit: bool) -> None:
    params = parse_params({**TINY, "dataset": {**TINY["dataset"], **dataset}})
    data = root / "processed"
    preprocess.run(params, data)
    model = root / "cvae.ckpt"
    train_vae.run(params, data / "train.parquet", data / "val.parquet", model, root / "live")
    splits = Splits(*(read_imageset(data / f"{name}.parquet") for name in ("pool", "val", "test")))
    (root / "cell.json").write_text(json.dumps(run_cell(splits, 3, 0, params), sort_keys=True))
    if with_audit:
        audit.run(params, {name: data / f"{name}.parquet" for name in audit.SPLITS}, root / "audit.parquet", None)


def main(workdir: str) -> None:
    root = Path(workdir)
    letters = make_npz(root / "raw", num_classes=4, per_class=20, size=28)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        work(root / "digits", {}, with_audit=True)
        work(root / "28px", {"source": "npz", "path": str(letters), "test_fraction": 0.25, "val_fraction": 0.25}, with_audit=False)
    print(json.dumps(sorted({event.key for event in prof.key_averages()})))


if __name__ == "__main__":
    main(sys.argv[1])
