"""Measure the pipeline's speed and memory on this machine: `python -m pipeline.bench`.

Seven questions, each answered by running the pipeline's own code:

1. training: what does Lightning cost? LitCVAE through `make_trainer` against a plain PyTorch loop
   over the same CVAE, DataLoader, optimizer and epochs (target: Lightning >= 0.8x plain); again
   on one thread, in CPU seconds, which other work on the machine hardly moves; and on the default
   100-image train set, where an epoch is two steps and per-epoch costs show;
2. generation: images/s and peak memory of the generate stage (`sampling.generate` streaming into
   `ImageParquetWriter`) for 10k and 1M samples;
3. dag: wall time and peak memory of every `dvc.yaml` stage, run in a temporary copy of the project;
4. mnist: the same at MNIST size (60k 28x28 images made here): preprocess, generation, and the
   training data path (PNGs decoded once into arrays, none in the training loop);
5. audit: does the label audit find flipped labels and foreign images injected into the digits
   and into a 28x28 letters folder, per ranking of its file, next to cleanlab (`--only-audit` runs
   just this part; see `pipeline/bench/audit.py`);
6. cluster: learning-curve cells under `executor: processes` and `ray` back to back, Ray's
   per-task overhead with empty cells, and the projected wall time on more CPUs or GPUs
   (`--only-cluster` runs just this part; see `pipeline/bench/cluster.py`; skipped without ray);
7. cells: what one learning-curve cell costs (wall and CPU seconds, the VAE's share, peak memory)
   on the 8x8 digits and on the hard 28x28 letters of issue #27, one thread (`--only-cells` runs
   just this part; see `pipeline/bench/cells.py`).

Memory is the peak RSS (high-water mark) of a fresh child process per measurement, so one
measurement cannot inflate the next. `--quick` shrinks every size for a smoke run.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import datetime
import json
import os
import platform
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from pipeline.bench.audit import bench_audit
from pipeline.bench.cells import bench_cells
from pipeline.bench.cluster import bench_cluster
from pipeline.bench.dag import QUICK_PARAMS, bench_dag
from pipeline.bench.generation import bench_generation
from pipeline.bench.letters import letter_splits
from pipeline.bench.measure import ROOT
from pipeline.bench.mnist import bench_mnist
from pipeline.bench.render import render, render_audit, render_cells, render_cluster
from pipeline.models.batched import measure_speedup
from pipeline.bench.training import TARGET_RATIO, compare_training, digits_splits, tiled
from pipeline.config import Params, load_params
from pipeline.data import parquet
from pipeline.data.splits import per_class_subset
from pipeline.errors import cli_guard
from pipeline.evaluation.cell import Splits


@dataclass(frozen=True)
class Sizes:
    train_images: int  # the digits training pool (1,077 images), tiled or cut to this many
    train_epochs: int
    repeats: int  # timed runs per variant, after one warm-up each; the median is reported
    small_epochs: int  # epochs on the default 100-image train set (2 steps per epoch)
    generate: tuple[int, ...]  # sample counts for the generation benchmark
    mnist_images: int
    mnist_train_steps: int
    classifier_fits: int = 20  # small CNNs fitted batched, then one at a time
    classifier_steps: int = 100
    audit_per_class: tuple[int, ...] = (10, 50)  # labeled images per class of each audit case (drawn from the pool)
    audit_steps: int | None = None  # steps of each fold VAE of the audit benchmark; None = audit.steps from params
    cluster_seeds: int = 0  # seeds (x params' train sizes) of the processes-vs-ray comparison; 0 skips it
    audit_letters_per_class: int = 100  # images per letter of the 28x28 audit case (10 letters; its pool is 60%)
    cell_sizes: tuple[int, ...] = (5, 10)  # training sizes of the cell-cost benchmark (`evaluate.train_sizes`' defaults)
    hard_letters_per_class: int = 100  # images per letter of its hard 28x28 case (issue #27's set)
    cell_vae_epochs: int | None = None  # its VAE's epochs; None = vae.epochs from params


FULL = Sizes(
    train_images=4 * 1077, train_epochs=2, repeats=5, small_epochs=30,
    generate=(10_000, 1_000_000), mnist_images=60_000, mnist_train_steps=60, cluster_seeds=4,
)
QUICK = Sizes(
    train_images=2 * 1077, train_epochs=1, repeats=3, small_epochs=10,
    generate=(2_000, 20_000), mnist_images=6_000, mnist_train_steps=15, classifier_fits=6, classifier_steps=20,
    audit_per_class=(10,), audit_steps=100, cluster_seeds=2, audit_letters_per_class=30,
    cell_sizes=(5,), hard_letters_per_class=30, cell_vae_epochs=10,
)


def machine_info() -> dict:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "load_average_1m": os.getloadavg()[0],  # other work on the machine skews every timing
    }


def run(
    params: Params, sizes: Sizes, skip_dag: bool = False, quick: bool = False, profile: bool = False,
    say: Callable[[str], None] = print,
) -> dict:
    """All seven benchmarks in a temporary folder; the JSON-ready results."""
    machine = machine_info()
    with tempfile.TemporaryDirectory(prefix="pipeline-bench-") as tmp:
        workdir = Path(tmp)
        digits = digits_splits(params, workdir)
        pool, train = parquet.read_imageset(digits / "pool.parquet"), parquet.read_imageset(digits / "train.parquet")
        scaled = tiled(pool, sizes.train_images)
        say(f"training: Lightning vs a plain loop on {len(scaled):,} digits, {params.trainer.num_threads} threads")
        training = compare_training(scaled, params, sizes.train_epochs, sizes.repeats, profile=profile)
        say("training: the same on one thread (CPU seconds: Lightning's own cost, whatever the load)")
        overhead = compare_training(scaled, params, sizes.train_epochs, sizes.repeats, threads=1, profile=profile)
        say(f"training: the same on the default {len(train)}-image train set, one thread")
        small = compare_training(train, params, sizes.small_epochs, sizes.repeats, threads=1, profile=profile)
        say(f"classifiers: {sizes.classifier_fits} fits batched vs one at a time, {params.trainer.num_threads} threads")
        classifiers = measure_speedup(sizes.classifier_fits, sizes.classifier_steps, params.evaluate.batch_size, params.trainer.num_threads or 1)
        say(f"generation: {', '.join(map(str, sizes.generate))} samples")
        generation = bench_generation(sizes.generate, train, params, workdir / "generate")
        dag = None
        if not skip_dag:
            say("dag: every dvc.yaml stage in a copy of the project" + (" (quick params)" if quick else ""))
            dag = bench_dag(workdir / "dag", QUICK_PARAMS if quick else None)
        say(f"mnist: {sizes.mnist_images} images of 28x28")
        mnist = bench_mnist(sizes.mnist_images, params, workdir / "mnist", train_steps=sizes.mnist_train_steps)
        audit = audit_part(params, sizes, workdir, say)
        cluster = cluster_part(params, sizes, digits, say)
        cells = cells_part(params, sizes, digits, workdir, say)
    return {
        "machine": {**machine, "load_average_1m_end": os.getloadavg()[0]},
        "mode": "quick" if quick else "full",
        "sizes": asdict(sizes),
        "lightning_samples_per_s": training["lightning_samples_per_s"],
        "plain_samples_per_s": training["plain_samples_per_s"],
        "lightning_vs_plain_ratio": training["lightning_vs_plain_ratio"],
        "target_ratio": TARGET_RATIO,
        "training": training,
        "training_one_thread": overhead,
        "training_small_data": small,
        "batched_fit_speedup": classifiers["batched_fit_speedup"],
        "classifier_fits": classifiers,
        "generation": generation,
        "dag": dag,
        "mnist": mnist,
        "audit": audit,
        **cluster_sections(cluster),
        "cells": cells,
    }


def cells_part(params: Params, sizes: Sizes, digits: Path, workdir: Path, say: Callable[[str], None]) -> list[dict]:
    return bench_cells(params, digits, workdir / "cells", sizes.cell_sizes, sizes.hard_letters_per_class, sizes.cell_vae_epochs, say)


def cluster_sections(cluster: dict) -> dict:
    """The cluster part and its two headline figures, as the JSON carries them."""
    return {
        "ray_task_overhead_s": cluster.get("ray_task_overhead_s"),
        "ray_vs_processes_ratio": cluster.get("ray_vs_processes_ratio"),
        "cluster": cluster,
    }


def cluster_part(params: Params, sizes: Sizes, digits: Path, say: Callable[[str], None]) -> dict:
    """Processes vs Ray on the digits splits; `{"skipped": why}` without ray or cells to run."""
    if not sizes.cluster_seeds:
        return {"skipped": "cluster_seeds is 0"}
    splits = Splits(*(parquet.read_imageset(digits / f"{name}.parquet") for name in ("pool", "val", "test")))
    return bench_cluster(splits, params, sizes.cluster_seeds, say=say)


def audit_part(params: Params, sizes: Sizes, workdir: Path, say: Callable[[str], None]) -> dict:
    """The audit benchmark on `sizes.audit_per_class` images per class of the digits pool and of
    the 28x28 letters pool (drawn per class with the seed), both split into `workdir`."""
    pools = {
        "digits 8x8": parquet.read_imageset(digits_splits(params, workdir) / "pool.parquet"),
        "letters 28x28": parquet.read_imageset(letter_splits(params, workdir, sizes.audit_letters_per_class) / "pool.parquet"),
    }
    cases = {}
    for (name, pool), per_class in itertools.product(pools.items(), sizes.audit_per_class):
        rows = per_class_subset(pool.labels, per_class, [params.seed, per_class], pool.class_names, "audit_per_class")
        cases[f"{name}, {per_class}/class"] = pool.subset(np.sort(rows))
    return bench_audit(params, cases, sizes.audit_steps, say=say)


def run_only(part: Callable[[Path], dict], sizes: Sizes, quick: bool) -> dict:
    """One part of the benchmark alone (`--only-*`): `part(a temporary folder)` gives its sections."""
    machine = machine_info()
    with tempfile.TemporaryDirectory(prefix="pipeline-bench-") as tmp:
        sections = part(Path(tmp))
    return {
        "machine": {**machine, "load_average_1m_end": os.getloadavg()[0]},
        "mode": "quick" if quick else "full",
        "sizes": asdict(sizes),
        **sections,
    }


@cli_guard
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.bench",
        description=__doc__.split("\n", 1)[0].split(":")[0] + ".\n\n" + __doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Full sizes take many minutes (the DAG at default params far more): try --quick --skip-dag first.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: 2k/20k samples, 6k MNIST-sized images, tiny DAG params")
    parser.add_argument("--skip-dag", action="store_true", help="skip timing the dvc.yaml stages (minutes at default params)")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object instead of tables")
    parser.add_argument("--out", type=Path, metavar="FILE", help="also write the JSON to FILE")
    parser.add_argument("--profile", action="store_true", help="cProfile a Lightning fit even when the ratio meets its target")
    parser.add_argument("--only-audit", action="store_true", help="run only the label-audit benchmark (flipped labels, foreign images)")
    parser.add_argument("--only-cluster", action="store_true", help="run only the processes-vs-Ray comparison of learning-curve cells")
    parser.add_argument("--only-cells", action="store_true", help="run only the cost of one cell on the digits and on the hard 28x28 letters")
    parser.add_argument(
        "--params", type=Path, default=ROOT / "params.yaml", help="batch size, lr, threads... (default: the project's params.yaml)"
    )
    args = parser.parse_args(argv)
    progress = Console(stderr=True)
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the result
        sizes = QUICK if args.quick else FULL
        say = lambda message: progress.print(f"bench: {message}")  # noqa: E731
        params = load_params(args.params)
        if args.only_audit:
            results = run_only(lambda tmp: {"audit": audit_part(params, sizes, tmp, say)}, sizes, args.quick)
        elif args.only_cluster:
            results = run_only(lambda tmp: cluster_sections(cluster_part(params, sizes, digits_splits(params, tmp), say)), sizes, args.quick)
        elif args.only_cells:
            results = run_only(lambda tmp: {"cells": cells_part(params, sizes, digits_splits(params, tmp), tmp, say)}, sizes, args.quick)
        else:
            results = run(params, sizes, args.skip_dag, args.quick, args.profile, say)
    text = json.dumps(results, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    if args.json:
        print(text)
    elif args.only_audit:
        render_audit(results, Console())
    elif args.only_cluster:
        Console().print(render_cluster(results["cluster"]))
    elif args.only_cells:
        Console().print(render_cells(results["cells"]))
    else:
        render(results, Console())


if __name__ == "__main__":
    main()
