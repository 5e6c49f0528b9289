"""How varied are the VAE's samples? Compare VAE settings and sampling strategies on your data.

For each VAE setting (params.yaml's `vae`, changed by `--vae key=value,...`) and seed, trains the
learning curve's VAE on a cell's real images (`--size` per class of the pool, `val` for the
epoch), draws samples with each strategy, and measures them as the learning curve does: label
fidelity, diversity ratio, recall, coverage, precision and memorisation, and the standard suite
(detection AUROC, α-precision, β-recall, authenticity, identifiability), in the features of the
learning curve's assessor CNN (trained on val), against real pool images no model saw; `real fid.`
is the assessor's accuracy on those real images, the fidelity real letters would score. `test` is
not read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from rich.console import Console
from rich.table import Table

from pipeline.config import Params, load_params, parse_params
from pipeline.data.parquet import read_imageset
from pipeline.errors import PipelineError, cli_guard
from pipeline.evaluation.assessor import run_assessor
from pipeline.evaluation.cell import Splits, real_subset
from pipeline.evaluation.quality import sample_quality
from pipeline.models.sampling import draw
from pipeline.models.training import single_device
from pipeline.models.vae import fit_cvae
from pipeline.tools._cli import tool_parser

SHOWN = {"label_fidelity": "fidelity", "assessor_accuracy": "real fid.", "diversity_ratio": "diversity", "recall": "recall", "coverage": "coverage",
         "precision": "precision", "memorisation_ratio": "memo. ratio", "detection_auroc": "detect. AUROC",
         "alpha_precision": "α-prec.", "beta_recall": "β-recall", "authenticity": "authentic.", "identifiability": "identif."}


@dataclass(frozen=True)
class Variant:
    name: str  # as given on the command line; "params" for params.yaml as it is
    params: Params


def variant(params: Params, spec: str) -> Variant:
    """`params` with `vae` keys set from `free_bits=0,best_epoch_by=elbo` (values read as YAML)."""
    if spec == "params":
        return Variant(spec, params)
    changes = {}
    for item in spec.split(","):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise PipelineError(f"--vae: expected key=value[,key=value], got {item!r}")
        changes[key.strip()] = yaml.safe_load(value)
    raw = params.model_dump()
    raw["vae"].update(changes)
    return Variant(spec, parse_params(raw, "--vae"))


def measure(splits: Splits, variant: Variant, size: int, seed: int, strategies: list[str], temperature: float) -> dict[str, dict]:
    """{strategy: quality} of one VAE trained on one cell's real images."""
    params = variant.params.model_copy(update={"trainer": single_device(variant.params.trainer)})
    real, reference, _ = real_subset(splits, size, seed, params.evaluate)
    assessor = run_assessor(splits.val, params.evaluate, params.trainer, params.seed)  # the learning curve's judge
    module, _ = fit_cvae(real, splits.val, params.vae, params.trainer, seed, progress_bar=False)
    per_class = int(np.bincount(reference.labels).max())  # sample_quality matches counts per class
    out = {}
    for strategy in strategies:
        cfg = params.generate.model_copy(update={
            "strategy": strategy, "temperature": temperature, "ratio": None, "per_class": per_class, "min_confidence": 0.0,
        })
        out[strategy] = sample_quality(draw(module.model, real, cfg, seed), real, reference, assessor, seed, per_class=False)
    return out


def run(params: Params, data_dir: Path, specs: list[str], size: int, seeds: list[int], strategies: list[str], temperature: float) -> list[dict]:
    """One row per (VAE setting, strategy): each metric's mean over seeds."""
    # test=None: nothing here may score on it (a file that is not there is not read).
    splits = Splits(read_imageset(data_dir / "pool.parquet"), read_imageset(data_dir / "val.parquet"), test=None)
    rows = []
    for v in (variant(params, spec) for spec in specs):
        per_seed = [measure(splits, v, size, seed, strategies, temperature) for seed in seeds]
        for strategy in strategies:
            means = {key: float(np.mean([q[strategy][key] for q in per_seed])) for key in SHOWN}
            rows.append({"vae": v.name, "strategy": strategy, "seeds": len(seeds), **means})
    return rows


def render(rows: list[dict], console: Console) -> None:
    table = Table("VAE", "strategy", *SHOWN.values(), title=f"Sample quality, mean of {rows[0]['seeds']} seeds")
    for row in rows:
        table.add_row(row["vae"], row["strategy"], *(f"{row[k]:.2f}" for k in SHOWN))
    console.print(table)


@cli_guard
def main(argv: list[str] | None = None) -> None:
    parser = tool_parser("pipeline.tools.variety", __doc__, """examples:
  python -m pipeline.tools.variety
  python -m pipeline.tools.variety --vae params --vae free_bits=0 --vae best_epoch_by=elbo --seeds 0 1 2 3
  python -m pipeline.tools.variety --size 5 --strategies prior borrow --json""",
    )
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data-dir", type=Path, default=Path("data/processed"), help="the preprocess stage's output (pool, val)")
    parser.add_argument("--vae", action="append", metavar="KEY=VALUE,...", help="a VAE setting to compare ('params': as in params.yaml, the default); repeatable")
    parser.add_argument("--size", type=int, default=10, help="real images per class the VAE trains on (default 10)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="cells to average over (default 0 1)")
    parser.add_argument("--strategies", nargs="+", default=["prior", "borrow", "posterior"], choices=["prior", "borrow", "posterior", "interpolate"])
    parser.add_argument("--temperature", type=float, default=1.0, help="latent noise scale of prior/posterior/borrow (default 1)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    args = parser.parse_args(argv)
    rows = run(load_params(args.params), args.data_dir, args.vae or ["params"], args.size, args.seeds, args.strategies, args.temperature)
    if args.json:
        print(json.dumps(rows, allow_nan=True))
    else:
        render(rows, Console())


if __name__ == "__main__":
    main()
