"""The pipeline at MNIST size (60k 28x28 images, made here): preprocess, generation, and the
training data path, where PNGs are decoded once into arrays and never in the training loop."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import yaml

from pipeline.bench import measure
from pipeline.bench.generation import bench_generation
from pipeline.bench.training import quiet
from pipeline.config import Params, load_params, parse_params
from pipeline.data import parquet
from pipeline.data.datamodule import ImageDataModule
from pipeline.models.training import make_trainer, seed_all
from pipeline.models.vae import build_module

CHUNK = 4096  # images made at a time: float work arrays stay ~50 MB whatever `n` is


def make_digit_like(n: int, size: int = 28, num_classes: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, size, size) uint8 and (n,) labels: per class a stroke at its own angle and a blob at its
    own spot, jittered and noisy; made in chunks so 60k images need ~50 MB, not gigabytes."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % num_classes).astype(np.int64)
    axis = np.linspace(0, 1, size, dtype=np.float32)
    yy, xx = axis[None, :, None], axis[None, None, :]
    images = np.empty((n, size, size), np.uint8)
    for start in range(0, n, CHUNK):
        k = labels[start : start + CHUNK]
        angle = (np.pi * k / num_classes)[:, None, None]
        turn = (2 * np.pi * k / num_classes)[:, None, None]
        cx, cy = 0.5 + rng.normal(0, 0.04, (2, len(k), 1, 1))
        across = np.abs((xx - cx) * np.sin(angle) - (yy - cy) * np.cos(angle))
        stroke = (across < 0.08) & (np.hypot(xx - cx, yy - cy) < 0.38)
        bx, by = 0.5 + 0.3 * np.cos(turn), 0.5 + 0.3 * np.sin(turn)
        blob = np.exp(-((xx - bx) ** 2 + (yy - by) ** 2) / (2 * 0.07**2))
        ink = np.clip(0.85 * stroke + blob + rng.normal(0, 0.04, (len(k), size, size)), 0, 1)
        images[start : start + len(k)] = np.rint(ink * 255).astype(np.uint8)
    return images, labels


@contextlib.contextmanager
def counting_png_decodes() -> Iterator[dict[str, int]]:
    """Count calls of the Parquet reader's PNG decoder while the block runs: {"n": calls}."""
    decode, calls = parquet.decode_stored, {"n": 0}

    def counting(*args, **kwargs):
        calls["n"] += 1
        return decode(*args, **kwargs)

    parquet.decode_stored = counting
    try:
        yield calls
    finally:
        parquet.decode_stored = decode


def data_path_child(train_path: str, params: dict, steps: int) -> dict:
    """In a child: decode the Parquet once, then batches and training steps with no PNG work."""
    cfg = parse_params(params)
    quiet()
    seed_all(cfg.seed, cfg.trainer)
    with counting_png_decodes() as decodes:
        start = time.perf_counter()
        data = parquet.read_imageset(train_path)
        read_s, decodes_reading = time.perf_counter() - start, decodes["n"]
        datamodule = ImageDataModule(data, None, cfg.vae.batch_size, cfg.trainer.num_workers, seed=cfg.seed)
        datamodule.setup("fit")
        loader = datamodule.train_dataloader()
        start = time.perf_counter()
        loaded = sum(len(labels) for _, labels, _ in loader)  # one epoch of batches, no model
        loader_s = time.perf_counter() - start
        trainer = make_trainer(cfg.trainer, max_epochs=-1, progress_bar=False, validate=False, max_steps=steps)
        start = time.perf_counter()
        trainer.fit(build_module(data, cfg.vae), datamodule=datamodule)
        train_rate = steps * loader.batch_size / (time.perf_counter() - start)
    return {
        "train_images": len(data),
        "read_s": read_s,
        "read_images_per_s": len(data) / read_s,
        "loader_samples_per_s": loaded / loader_s,
        "training_samples_per_s": train_rate,
        "read_share_of_first_epoch": read_s / (read_s + len(data) / train_rate),
        "png_decodes_reading": decodes_reading,
        "png_decodes_training": decodes["n"] - decodes_reading,
    }


def bench_mnist(n: int, params: Params, workdir: Path, train_steps: int = 60) -> dict:
    """preprocess on an npz source of `n` 28x28 images, generating `n` samples, and the training
    data path on `pool.parquet` (what training reads when `dataset.train_per_class` is null)."""
    workdir.mkdir(parents=True, exist_ok=True)
    images, labels = make_digit_like(n)
    np.savez(workdir / "mnist_like.npz", x=images, y=labels)
    settings = params.model_dump()
    settings["dataset"].update(source="npz", path=str(workdir / "mnist_like.npz"))
    params_file = workdir / "params.yaml"
    params_file.write_text(yaml.safe_dump(settings))
    out = workdir / "processed"
    summary = workdir / "data.json"  # every output in workdir: the command runs in the project root
    argv = ["python", "-m", "pipeline.stages.preprocess", "--params", str(params_file), "--out-dir", str(out), "--summary", str(summary)]
    result = {"images": n, "preprocess": measure.run_command(argv, measure.ROOT, workdir / "preprocess.log")}
    train = parquet.read_imageset(out / "train.parquet")  # the small set the generate stage reads
    [result["generate"]] = bench_generation((n,), train, params, workdir / "generate")
    cfg = load_params(params_file).model_dump()
    result["data_path"] = measure.in_child(data_path_child, train_path=str(out / "pool.parquet"), params=cfg, steps=train_steps)
    return result
