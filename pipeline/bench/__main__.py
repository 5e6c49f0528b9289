"""Measure the pipeline's speed and memory on this machine: `python -m pipeline.bench`.

Four questions, each answered by running the pipeline's own code:

1. training: what does Lightning cost? LitCVAE through `make_trainer` against a plain PyTorch loop
   over the same CVAE, DataLoader, optimizer and epochs (target: Lightning >= 0.8x plain); again
   on one thread, in CPU seconds, which other work on the machine hardly moves; and on the default
   100-image train set, where an epoch is two steps and per-epoch costs show;
2. generation: images/s and peak memory of the generate stage (`sampling.generate` streaming into
   `ImageParquetWriter`) for 10k and 1M samples;
3. dag: wall time and peak memory of every `dvc.yaml` stage, run in a temporary copy of the project;
4. mnist: the same at MNIST size (60k 28x28 images made here): preprocess, generation, and the
   training data path (PNGs decoded once into arrays, none in the training loop).

Memory is the peak RSS (high-water mark) of a fresh child process per measurement, so one
measurement cannot inflate the next. `--quick` shrinks every size for a smoke run.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime
import json
import os
import platform
import pstats
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from rich.console import Console
from rich.table import Table

from pipeline.data import parquet
from pipeline.stages import generate as generate_stage
from pipeline.config import DatasetConfig, Params, load_params, parse_params
from pipeline.data.datamodule import ImageDataModule
from pipeline.errors import PipelineError, cli_guard
from pipeline.data.imageset import ImageSet
from pipeline.models.lit_cvae import LitCVAE
from pipeline.stages.preprocess import run as preprocess
from pipeline.models.vae import build_module, save_model
from pipeline.models.training import make_trainer, seed_all

ROOT = Path(__file__).resolve().parents[2]
TARGET_RATIO = 0.8  # Lightning should keep at least this share of a plain loop's throughput
MIB = 2**20


@dataclass(frozen=True)
class Sizes:
    train_images: int  # the digits training pool (1,077 images), tiled or cut to this many
    train_epochs: int
    repeats: int  # timed runs per variant, after one warm-up each; the median is reported
    small_epochs: int  # epochs on the default 100-image train set (2 steps per epoch)
    generate: tuple[int, ...]  # sample counts for the generation benchmark
    mnist_images: int
    mnist_train_steps: int


FULL = Sizes(
    train_images=4 * 1077, train_epochs=2, repeats=5, small_epochs=30,
    generate=(10_000, 1_000_000), mnist_images=60_000, mnist_train_steps=60,
)
QUICK = Sizes(
    train_images=2 * 1077, train_epochs=1, repeats=3, small_epochs=10,
    generate=(2_000, 20_000), mnist_images=6_000, mnist_train_steps=15,
)

# The DAG under --quick: every stage and code path runs, in seconds rather than minutes.
QUICK_DAG_PARAMS = {
    "dataset": {"train_per_class": 3},
    "trainer": {"progress_bar": False},
    "vae": {"epochs": 3, "val_every_n_epochs": 1, "early_stopping_patience": 0, "sample_every_n_epochs": 2},
    "evaluate": {"seeds": [0, 1], "train_sizes": [3], "steps": 10, "classic_copies": 1},
}


# --- measuring ---------------------------------------------------------------------------------


def rss_mib() -> float:
    """This process's resident memory now in MiB (without /proc: its peak so far)."""
    status = Path("/proc/self/status")
    for line in status.read_text().splitlines() if status.exists() else []:
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return _rusage_mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _rusage_mib(ru_maxrss: int) -> float:
    return ru_maxrss / MIB if sys.platform == "darwin" else ru_maxrss / 1024  # bytes there, KiB here


def in_child(fn: Callable[..., dict], **kwargs) -> dict:
    """`fn(**kwargs)` in a fresh interpreter (JSON in, JSON out), plus that child's peak RSS."""
    with tempfile.TemporaryDirectory(prefix="bench-child-") as tmp:
        result = Path(tmp) / "result.json"
        code = (
            "import json, pathlib, sys, pipeline.bench.__main__ as bench; "
            "pathlib.Path(sys.argv[3]).write_text(json.dumps(getattr(bench, sys.argv[1])(**json.loads(sys.argv[2]))))"
        )
        argv = ["python", "-c", code, fn.__name__, json.dumps(kwargs), str(result)]
        measured = run_command(argv, ROOT, Path(tmp) / "log")
        return {**json.loads(result.read_text()), "peak_rss_mib": measured["peak_rss_mib"]}


def quiet() -> None:
    """Lightning warns on every fit that LitCVAE's validation_step has no loader: by design here."""
    warnings.filterwarnings("ignore", ".*validation_step.*val_dataloader.*")


# Launching a command straight from this process would charge our own RSS to it: Linux carries
# the parent's high-water mark over at fork+exec into the child's ru_maxrss. A bare interpreter
# launches it instead; its ~10 MiB is far below any command we measure.
REAPER = """import json, os, subprocess, sys, time
start = time.perf_counter()
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
code = os.waitstatus_to_exitcode(status)
with open(sys.argv[1], "w") as out:
    json.dump({"wall_s": time.perf_counter() - start, "ru_maxrss": usage.ru_maxrss}, out)
sys.exit(code)
"""


def run_command(argv: list[str], cwd: Path, log: Path) -> dict:
    """Run a command; its wall time and peak RSS (its own and its children's, no one else's)."""
    env = dict(os.environ, DVC_NO_ANALYTICS="1", NO_ALBUMENTATIONS_UPDATE="1", PYTHONPATH=str(cwd))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    if argv[0] in ("python", "python3"):
        argv = [sys.executable, *argv[1:]]
    usage_file = log.with_suffix(".usage.json")
    with log.open("wb") as out:
        reaper = [sys.executable, "-S", "-c", REAPER, str(usage_file), *argv]
        done = subprocess.run(reaper, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise PipelineError(f"bench: `{shlex.join(argv)}` failed with exit code {done.returncode}:\n{tail}")
    usage = json.loads(usage_file.read_text())
    return {"wall_s": usage["wall_s"], "peak_rss_mib": _rusage_mib(usage["ru_maxrss"])}


# --- 1. training: Lightning against a plain loop --------------------------------------------------


def digits_splits(params: Params, workdir: Path) -> Path:
    """The default digits splits, written by the preprocess stage's own code; returns the folder."""
    out = workdir / "digits"
    preprocess(params.model_copy(update={"dataset": DatasetConfig()}), out)
    return out


def tiled(data: ImageSet, n: int) -> ImageSet:
    """`data` repeated, or cut, to `n` images: more steps per epoch than the pool alone gives."""
    return data.subset(np.arange(n) % len(data))


def _fit_lightning(module: LitCVAE, loader, params: Params, epochs: int) -> None:
    make_trainer(params.trainer, epochs, progress_bar=False, validate=False).fit(module, train_dataloaders=loader)


def _fit_plain(module: LitCVAE, loader, params: Params, epochs: int) -> None:
    """What Lightning does around LitCVAE.objective, written by hand: loss, backward, Adam step."""
    optimizer = module.configure_optimizers()
    module.train()
    for epoch in range(epochs):
        for x, y, _ in loader:
            loss, _, _ = module.objective(x, y, epoch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


LOOPS = {  # name -> (module class, fit)
    "lightning": (LitCVAE, _fit_lightning),
    "plain": (LitCVAE, _fit_plain),
}


def _timed(loop: str, data: ImageSet, loader, params: Params, epochs: int) -> tuple[float, float]:
    """(wall, CPU) seconds of one fit from a freshly initialised module."""
    cls, fit = LOOPS[loop]
    module = cls(**build_module(data, params.vae).hparams)
    wall, cpu = time.perf_counter(), time.process_time()
    fit(module, loader, params, epochs)
    return time.perf_counter() - wall, time.process_time() - cpu


def compare_training(
    data: ImageSet, params: Params, epochs: int, repeats: int, threads: int | None = None, profile: bool = False
) -> dict:
    """Samples/s of each loop over one shared DataLoader, alternating runs so a neighbour's load
    hits every loop alike. `threads` overrides `trainer.num_threads`; with 1 thread, CPU seconds
    measure each loop's own work, whatever else the machine runs."""
    quiet()
    if threads is not None:
        trainer = params.trainer.model_copy(update={"num_threads": threads})
        params = params.model_copy(update={"trainer": trainer})
    seed_all(params.seed, params.trainer)
    datamodule = ImageDataModule(data, None, params.vae.batch_size, params.trainer.num_workers, seed=params.seed)
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()  # what fit_cvae trains on
    for loop in LOOPS:  # warm-up: first-call allocations, lazy imports
        _timed(loop, data, loader, params, 1)
    runs: dict[str, list[tuple[float, float]]] = {loop: [] for loop in LOOPS}
    for _ in range(repeats):
        for loop in LOOPS:
            runs[loop].append(_timed(loop, data, loader, params, epochs))
    result = {
        "images": len(data),
        "batch_size": params.vae.batch_size,
        "steps_per_epoch": len(loader),
        "epochs": epochs,
        "repeats": repeats,
        "torch_threads": torch.get_num_threads(),
        **_rates(runs, len(data) * epochs, len(loader) * epochs),
    }
    if profile or min(result["lightning_vs_plain_ratio"], result["lightning_vs_plain_cpu_ratio"]) < TARGET_RATIO:
        result["profile"] = profile_lightning(data, loader, params, epochs)
    return result


def _rates(runs: dict[str, list[tuple[float, float]]], samples: int, steps: int) -> dict:
    """Medians of (wall, CPU) seconds per loop, as throughputs, ratios and per-step costs."""
    wall = {loop: statistics.median(w for w, _ in r) for loop, r in runs.items()}
    cpu = {loop: statistics.median(c for _, c in r) for loop, r in runs.items()}
    return {
        **{f"{loop}_samples_per_s": samples / wall[loop] for loop in runs},
        "lightning_vs_plain_ratio": wall["plain"] / wall["lightning"],
        "lightning_vs_plain_ratio_best_runs": min(w for w, _ in runs["plain"]) / min(w for w, _ in runs["lightning"]),
        "lightning_vs_plain_cpu_ratio": cpu["plain"] / cpu["lightning"],
        "plain_cpu_ms_per_step": 1000 * cpu["plain"] / steps,
        "lightning_overhead_cpu_ms_per_step": 1000 * (cpu["lightning"] - cpu["plain"]) / steps,
        "runs_wall_s": {loop: [w for w, _ in r] for loop, r in runs.items()},
        "runs_cpu_s": {loop: [c for _, c in r] for loop, r in runs.items()},
    }


def profile_lightning(data: ImageSet, loader, params: Params, epochs: int) -> dict:
    """Where one Lightning fit spends its time (cProfile): model work vs everything else."""
    module = build_module(data, params.vae)
    trainer = make_trainer(params.trainer, epochs, progress_bar=False, validate=False)
    profiler = cProfile.Profile()
    profiler.runcall(trainer.fit, module, train_dataloaders=loader)
    entries = pstats.Stats(profiler).stats  # {(file, line, function): (cc, calls, tottime, cumtime, callers)}

    def cumtime(path_part: str, function: str) -> float:
        return max((v[3] for (f, _, fn), v in entries.items() if path_part in f and fn == function), default=0.0)

    fit = cumtime("trainer/trainer.py", "fit")
    work = {
        "forward_and_loss_s": cumtime("pipeline/models/cvae.py", "loss_terms"),
        "backward_s": cumtime("torch/autograd/__init__.py", "backward"),
        "adam_update_s": cumtime("torch/optim/adam.py", "adam"),
        "data_loading_s": cumtime("torch/utils/data/dataloader.py", "__next__"),
    }
    framework = [
        (v[2], f"{Path(f).name}:{line}({fn})")
        for (f, line, fn), v in entries.items()
        if "lightning" in f or "torchmetrics" in f
    ]
    return {
        "fit_s": fit,
        **work,
        "self_log_s": cumtime("core/module.py", "log"),
        "lightning_overhead_s": fit - sum(work.values()),
        "top_lightning_functions": [f"{name} {seconds:.3f}s" for seconds, name in sorted(framework, reverse=True)[:8]],
    }


# --- 2. generation into Parquet -------------------------------------------------------------------


def prepare_generator(train: ImageSet, params: Params, workdir: Path) -> tuple[Path, Path]:
    """An untrained CVAE checkpoint and its train Parquet: all the generate stage reads."""
    workdir.mkdir(parents=True, exist_ok=True)
    model_path, train_path = workdir / "cvae.ckpt", workdir / "train.parquet"
    torch.manual_seed(params.seed)
    save_model(build_module(train, params.vae), model_path)
    parquet.write_imageset(train_path, train)
    return model_path, train_path


def _generate_child(params: dict, model_path: str, train_path: str, out_path: str) -> dict:
    """In a child: the generate stage's `run`, timed, with this process's peak memory."""
    baseline = rss_mib()
    start = time.perf_counter()
    cfg = parse_params(params)
    metrics = generate_stage.run(cfg, Path(model_path), Path(train_path), Path(out_path), None, show_progress=False)
    seconds = time.perf_counter() - start
    return {
        "rows": metrics["rows"],
        "wall_s": seconds,
        "images_per_s": metrics["rows"] / seconds,
        "start_rss_mib": baseline,
        "file_mib": Path(out_path).stat().st_size / MIB,
    }


def bench_generation(counts: tuple[int, ...], train: ImageSet, params: Params, workdir: Path) -> list[dict]:
    model_path, train_path = prepare_generator(train, params, workdir)
    results = []
    for count in counts:
        per_class = -(-count // train.num_classes)
        # fixed settings: this times sampling and writing, not the `auto` search on val
        fixed = {"strategy": "prior", "temperature": 1.0, "min_confidence": 0.0}
        sampling = params.generate.model_copy(update={"per_class": per_class, "ratio": None, **fixed})
        out = workdir / f"synthetic_{count}.parquet"
        row = in_child(
            _generate_child, params=params.model_copy(update={"generate": sampling}).model_dump(),
            model_path=str(model_path), train_path=str(train_path), out_path=str(out),
        )
        results.append({"samples": count, **row})
        out.unlink()
    return results


# --- 3. every DAG stage, in a copy of the project ------------------------------------------------


def copy_project(dest: Path) -> Path:
    """Git-tracked files plus `pipeline/` (new modules may be untracked), without outputs."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True)
    names = [n for n in listed.stdout.split("\0") if n] if listed.returncode == 0 else []
    names += [str(p.relative_to(ROOT)) for p in (ROOT / "pipeline").rglob("*") if p.is_file()]
    names += ["dvc.yaml", "params.yaml"]
    for name in dict.fromkeys(names):
        if (ROOT / name).is_file() and "__pycache__" not in name:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    (dest / "data" / "raw").mkdir(parents=True, exist_ok=True)
    git = ["git", "-c", "user.email=bench@localhost", "-c", "user.name=bench"]
    for argv in (["git", "init", "-q"], [*git, "add", "-A"], [*git, "commit", "-qm", "bench"]):
        subprocess.run(argv, cwd=dest, capture_output=True)  # dvclive wants a commit; harmless without git
    return dest


def _paths(entries: list) -> list[str]:
    return [next(iter(e)) if isinstance(e, dict) else e for e in entries or []]


def stage_order(stages: dict) -> list[str]:
    """Stages with every producer before its consumers, otherwise in file order."""
    made = {name: _paths(s.get("outs")) + _paths(s.get("metrics")) + _paths(s.get("plots")) for name, s in stages.items()}

    def needs(stage: str, other: str) -> bool:
        deps = _paths(stages[stage].get("deps"))
        return any(d == o or d.startswith(o + "/") or o.startswith(d + "/") for d in deps for o in made[other])

    order: list[str] = []
    remaining = list(stages)
    while remaining:
        ready = [s for s in remaining if not any(needs(s, o) for o in remaining if o != s)]
        if not ready:
            raise PipelineError(f"bench: dvc.yaml stages depend on each other in a cycle: {remaining}")
        order.append(ready[0])
        remaining.remove(ready[0])
    return order


def bench_dag(workdir: Path, overrides: dict | None = None, only: list[str] | None = None) -> list[dict]:
    """Each stage's `cmd` from dvc.yaml, in order, as a measured subprocess (no dvc needed)."""
    project = copy_project(workdir / "project")
    params_file = project / "params.yaml"
    merged = _deep_update(yaml.safe_load(params_file.read_text()), overrides or {})
    params_file.write_text(yaml.safe_dump(merged, sort_keys=False))
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    results = []
    for name in stage_order(stages):
        if only is not None and name not in only:
            continue
        if "cmd" not in stages[name]:
            raise PipelineError(f"bench: stage {name!r} has no single cmd (foreach/matrix); time it with dvc repro")
        argv = shlex.split(stages[name]["cmd"])
        results.append({"stage": name, **run_command(argv, project, workdir / f"{name}.log")})
    return results


def _deep_update(base: dict, changes: dict) -> dict:
    for key, value in changes.items():
        base[key] = _deep_update(base.get(key) or {}, value) if isinstance(value, dict) else value
    return base


# --- 4. MNIST-sized data --------------------------------------------------------------------------


def make_digit_like(n: int, size: int = 28, num_classes: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, size, size) uint8 and (n,) labels: per class a stroke at its own angle and a blob at its
    own spot, jittered and noisy; made in chunks so 60k images need ~50 MB, not gigabytes."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % num_classes).astype(np.int64)
    axis = np.linspace(0, 1, size, dtype=np.float32)
    yy, xx = axis[None, :, None], axis[None, None, :]
    images = np.empty((n, size, size), np.uint8)
    for start in range(0, n, 4096):
        k = labels[start : start + 4096]
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
def counting_png_decodes():
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


def _data_path_child(train_path: str, params: dict, steps: int) -> dict:
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
    params_file = workdir / "params.yaml"
    dataset = {"source": "npz", "path": str(workdir / "mnist_like.npz")}
    params_file.write_text(yaml.safe_dump(_deep_update(params.model_dump(), {"dataset": dataset})))
    out = workdir / "processed"
    summary = workdir / "data.json"  # every output in workdir: the command runs in the project root
    argv = ["python", "-m", "pipeline.stages.preprocess", "--params", str(params_file), "--out-dir", str(out), "--summary", str(summary)]
    result = {"images": n, "preprocess": run_command(argv, ROOT, workdir / "preprocess.log")}
    train = parquet.read_imageset(out / "train.parquet")  # the small set the generate stage reads
    [result["generate"]] = bench_generation((n,), train, params, workdir / "generate")
    cfg = load_params(params_file).model_dump()
    result["data_path"] = in_child(_data_path_child, train_path=str(out / "pool.parquet"), params=cfg, steps=train_steps)
    return result


# --- the whole run, and its report ----------------------------------------------------------------


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
        say(f"generation: {', '.join(map(str, sizes.generate))} samples")
        generation = bench_generation(sizes.generate, train, params, workdir / "generate")
        dag = None
        if not skip_dag:
            say("dag: every dvc.yaml stage in a copy of the project" + (" (quick params)" if quick else ""))
            dag = bench_dag(workdir / "dag", QUICK_DAG_PARAMS if quick else None)
        say(f"mnist: {sizes.mnist_images} images of 28x28")
        mnist = bench_mnist(sizes.mnist_images, params, workdir / "mnist", train_steps=sizes.mnist_train_steps)
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
        "generation": generation,
        "dag": dag,
        "mnist": mnist,
    }


def _table(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for row in rows:
        table.add_row(*row)
    return table


def _training_rows(t: dict) -> list[tuple[str, str]]:
    verdict = "meets" if t["lightning_vs_plain_ratio"] >= TARGET_RATIO else "below"
    rows = [
        ("images x epochs", f"{t['images']:,} x {t['epochs']}, {t['steps_per_epoch']} steps of {t['batch_size']} per epoch"),
        ("torch threads", str(t["torch_threads"])),
        ("Lightning", f"{t['lightning_samples_per_s']:,.0f} samples/s"),
        ("plain PyTorch loop", f"{t['plain_samples_per_s']:,.0f} samples/s"),
        ("Lightning / plain, wall clock", f"{t['lightning_vs_plain_ratio']:.2f} ({verdict} the {TARGET_RATIO} target)"),
        ("... fastest run of each", f"{t['lightning_vs_plain_ratio_best_runs']:.2f}"),
        ("Lightning / plain, CPU seconds", f"{t['lightning_vs_plain_cpu_ratio']:.2f}"),
        ("plain loop, CPU per step", f"{t['plain_cpu_ms_per_step']:.2f} ms"),
        ("Lightning's extra CPU per step", f"{t['lightning_overhead_cpu_ms_per_step']:.2f} ms"),
    ]
    if "profile" in t:
        rows += [(f"cProfile: {key}", f"{value:.2f}") for key, value in t["profile"].items() if key.endswith("_s")]
        rows.append(("cProfile: top Lightning functions", "\n".join(t["profile"]["top_lightning_functions"])))
    return rows


def _mnist_rows(m: dict) -> list[tuple[str, str]]:
    pre, gen, path = m["preprocess"], m["generate"], m["data_path"]
    return [
        ("preprocess", f"{pre['wall_s']:.1f} s, peak {pre['peak_rss_mib']:,.0f} MiB (target <= 2,048)"),
        (f"generate {gen['samples']:,}", f"{gen['images_per_s']:,.0f} images/s, peak {gen['peak_rss_mib']:,.0f} MiB"),
        (f"read pool Parquet ({path['train_images']:,} rows)", f"{path['read_s']:.2f} s, {path['read_images_per_s']:,.0f} images/s"),
        ("... PNG decodes", f"{path['png_decodes_reading']:,}"),
        ("DataLoader alone", f"{path['loader_samples_per_s']:,.0f} samples/s"),
        ("VAE training", f"{path['training_samples_per_s']:,.0f} samples/s"),
        ("... PNG decodes", str(path["png_decodes_training"])),
        ("reading / (reading + 1st epoch)", f"{path['read_share_of_first_epoch']:.1%}"),
        ("peak memory, read + train", f"{path['peak_rss_mib']:,.0f} MiB"),
    ]


def render(results: dict, console: Console) -> None:
    console.print(_table("VAE training, digits pool tiled", _training_rows(results["training"])))
    console.print(_table("VAE training, digits pool tiled, one thread", _training_rows(results["training_one_thread"])))
    console.print(_table("VAE training, default train set, one thread", _training_rows(results["training_small_data"])))
    console.print(_table("Generation into Parquet (the generate stage, untrained CVAE, 8x8)", [
        (f"{g['samples']:,} samples", f"{g['images_per_s']:,.0f} images/s, peak {g['peak_rss_mib']:,.0f} MiB "
         f"({g['start_rss_mib']:,.0f} before sampling), file {g['file_mib']:.1f} MiB")
        for g in results["generation"]
    ]))
    if results["dag"] is not None:
        console.print(_table(f"DAG stages ({results['mode']} params)", [
            (s["stage"], f"{s['wall_s']:.1f} s, peak {s['peak_rss_mib']:,.0f} MiB") for s in results["dag"]
        ]))
    console.print(_table(f"MNIST-sized: {results['mnist']['images']:,} images of 28x28", _mnist_rows(results["mnist"])))
    m = results["machine"]
    console.print(f"{m['platform']}, {m['cpu_count']} CPUs, torch {m['torch']}, {m['date']}")
    load = f"load average (1 min) {m['load_average_1m']:.1f} at the start, {m['load_average_1m_end']:.1f} at the end"
    console.print(f"{load}: well above 0 means other work shared the CPUs and slowed every timing")


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
    parser.add_argument(
        "--params", type=Path, default=ROOT / "params.yaml", help="batch size, lr, threads... (default: the project's params.yaml)"
    )
    args = parser.parse_args(argv)
    progress = Console(stderr=True)
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the result
        sizes = QUICK if args.quick else FULL
        say = lambda message: progress.print(f"bench: {message}")  # noqa: E731
        results = run(load_params(args.params), sizes, args.skip_dag, args.quick, args.profile, say)
    text = json.dumps(results, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    if args.json:
        print(text)
    else:
        render(results, Console())


if __name__ == "__main__":
    main()
