"""What one learning-curve cell costs on the 8x8 digits and on the hard 28x28 letters.

A study is cells (`evaluate.seeds` x `evaluate.train_sizes`), so a cell's cost is what a user
multiplies; the quality assessor is trained once per run (per worker process), so its cost is
timed apart, not in the cell's. The hard letters (issue #27, `letters.hard_letter`) get the wider sigma-VAE that `vae:
auto` builds from 16 px; the digits keep the small Bernoulli one. Each cell runs in a fresh process
(its peak memory is its own), on the splits the preprocess stage writes, with the params given.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from pipeline.bench import measure
from pipeline.bench.letters import letter_splits
from pipeline.config import Params
from pipeline.data.parquet import read_imageset
from pipeline.evaluation import cell
from pipeline.evaluation.assessor import run_assessor
from pipeline.evaluation.cell import Splits
from pipeline.models.training import single_device


def cell_cost(splits_dir: str, params: dict, size: int, seed: int) -> dict:
    """One balanced cell (in the calling process): wall and CPU seconds, and the VAE fit's share;
    the run's quality assessor, which every cell of a worker shares, fitted and timed first."""
    data = Path(splits_dir)
    splits = Splits(*(read_imageset(data / f"{name}.parquet") for name in ("pool", "val", "test")))
    run_params = Params.model_validate(params)
    start = time.perf_counter()
    run_assessor(splits.val, run_params.evaluate, single_device(run_params.trainer), run_params.seed)
    assessor_s = time.perf_counter() - start
    fit_cvae, vae_s = cell.fit_cvae, []

    def timed_fit(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fit_cvae(*args, **kwargs)
        finally:
            vae_s.append(time.perf_counter() - start)

    cell.fit_cvae = timed_fit  # this process runs one cell and exits
    try:
        start, cpu = time.perf_counter(), time.process_time()
        record = cell.run_cell(splits, size, seed, run_params)
        wall_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu
    finally:
        cell.fit_cvae = fit_cvae
    return {
        "size": size, "seed": seed, "wall_s": wall_s, "cpu_s": cpu_s, "vae_s": sum(vae_s), "assessor_s": assessor_s,
        "label_fidelity": record["quality"]["label_fidelity"],
    }


def bench_cells(
    params: Params, digits_dir: Path, workdir: Path, sizes: tuple[int, ...], hard_per_class: int,
    vae_epochs: int | None = None, say: Callable[[str], None] = print,
) -> list[dict]:
    """A cell per training size on the digits and on the hard letters (`hard_per_class` images per
    letter), seed 0, one thread, each in a fresh process; `vae_epochs` shrinks the VAE for smoke runs."""
    update = {"trainer": params.trainer.model_copy(update={"num_threads": 1, "progress_bar": False})}
    if vae_epochs is not None:
        update["vae"] = params.vae.model_copy(update={"epochs": vae_epochs})
    plain = params.model_copy(update=update).model_dump(mode="json")
    cases = {"digits 8x8": digits_dir, "hard letters 28x28": letter_splits(params, workdir, hard_per_class, hard=True)}
    rows = []
    for case, folder in cases.items():
        for size in sizes:
            say(f"cells: {case}, {size} per class")
            cost = measure.in_child(cell_cost, splits_dir=str(folder), params=plain, size=size, seed=0)
            rows.append({"case": case, **cost})
    return rows
