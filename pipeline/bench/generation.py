"""Images/s and peak memory of the generate stage: `sampling.generate` streaming into Parquet.

Each sample count runs the stage's own `run` in a fresh child, so its peak memory is its own.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from pipeline.bench import measure
from pipeline.config import Params, parse_params
from pipeline.data import parquet
from pipeline.data.imageset import ImageSet
from pipeline.models.vae import build_module, save_model
from pipeline.stages import generate as generate_stage

# Fixed settings: this times sampling and writing, not the `auto` search on val.
FIXED_SAMPLING = {"strategy": "prior", "temperature": 1.0, "min_confidence": 0.0, "ratio": None}


def prepare_generator(train: ImageSet, params: Params, workdir: Path) -> tuple[Path, Path]:
    """An untrained CVAE checkpoint and its train Parquet: all the generate stage reads."""
    workdir.mkdir(parents=True, exist_ok=True)
    model_path, train_path = workdir / "cvae.ckpt", workdir / "train.parquet"
    torch.manual_seed(params.seed)
    save_model(build_module(train, params.vae), model_path)
    parquet.write_imageset(train_path, train)
    return model_path, train_path


def generate_child(params: dict, model_path: str, train_path: str, out_path: str) -> dict:
    """In a child: the generate stage's `run`, timed, with this process's memory before it."""
    baseline = measure.rss_mib()
    start = time.perf_counter()
    cfg = parse_params(params)
    metrics = generate_stage.run(cfg, Path(model_path), Path(train_path), Path(out_path), None, show_progress=False)
    seconds = time.perf_counter() - start
    return {
        "rows": metrics["rows"],
        "wall_s": seconds,
        "images_per_s": metrics["rows"] / seconds,
        "start_rss_mib": baseline,
        "file_mib": Path(out_path).stat().st_size / measure.MIB,
    }


def bench_generation(counts: tuple[int, ...], train: ImageSet, params: Params, workdir: Path) -> list[dict]:
    """One row per sample count; each output file is deleted once measured (1M rows is large)."""
    model_path, train_path = prepare_generator(train, params, workdir)
    results = []
    for count in counts:
        per_class = -(-count // train.num_classes)
        sampling = params.generate.model_copy(update={"per_class": per_class, **FIXED_SAMPLING})
        out = workdir / f"synthetic_{count}.parquet"
        row = measure.in_child(
            generate_child, params=params.model_copy(update={"generate": sampling}).model_dump(),
            model_path=str(model_path), train_path=str(train_path), out_path=str(out),
        )
        results.append({"samples": count, **row})
        out.unlink()
    return results
