"""What Lightning costs: LitCVAE through `make_trainer` against a plain PyTorch loop.

Both loops train the same LitCVAE on one shared DataLoader with the same optimizer, and the plain
loop calls `LitCVAE.objective`, the very loss the pipeline trains (free bits included), so the
only difference measured is the framework around it.
"""

from __future__ import annotations

import cProfile
import pstats
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from pipeline.config import DatasetConfig, Params
from pipeline.data.datamodule import ImageDataModule
from pipeline.data.imageset import ImageSet
from pipeline.models.lit_cvae import LitCVAE
from pipeline.models.training import make_trainer, seed_all
from pipeline.models.vae import build_module
from pipeline.stages.preprocess import run as preprocess

TARGET_RATIO = 0.8  # Lightning should keep at least this share of a plain loop's throughput


def quiet() -> None:
    """Lightning warns on every fit that LitCVAE's validation_step has no loader: by design here."""
    warnings.filterwarnings("ignore", ".*validation_step.*val_dataloader.*")


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


LOOPS = {"lightning": _fit_lightning, "plain": _fit_plain}


def _timed(loop: str, data: ImageSet, loader, params: Params, epochs: int) -> tuple[float, float]:
    """(wall, CPU) seconds of one fit from a freshly initialised module."""
    module = LitCVAE(**build_module(data, params.vae).hparams)
    wall, cpu = time.perf_counter(), time.process_time()
    LOOPS[loop](module, loader, params, epochs)
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
