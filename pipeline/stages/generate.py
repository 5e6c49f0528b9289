"""Stage 3: sample synthetic labeled images from the trained VAE into Parquet.

Settings left `auto` in params are first chosen on `val`, the way the learning curve's real + VAE
arm chooses them (`pipeline/evaluation/tuning.py`); the choice goes to the metrics file. Batches stream into the file
through pyarrow's writer, so memory stays bounded however many samples are asked for; the file
appears under its final name only when complete. Acceptance rates of the filters go to a small
metrics file.
"""

from __future__ import annotations

from pathlib import Path

import torch
from rich.progress import Progress

from pipeline import lifecycle
from pipeline.atomic import write_json
from pipeline.config import GenerateConfig, Params, load_params
from pipeline.data.parquet import ImageParquetWriter, read_imageset
from pipeline.errors import PipelineError, cli_guard
from pipeline.evaluation.selection import describe
from pipeline.evaluation.tuning import choose_sampling
from pipeline.models.sampling import Tally, generate, targets_per_class
from pipeline.models.vae import file_digest, load_cvae
from pipeline.stages._cli import stage_parser


def run(
    params: Params,
    model_path: Path,
    train_path: Path,
    out_path: Path,
    metrics_path: Path | None,
    show_progress: bool = True,
    val_path: Path | None = None,
) -> dict:
    module = load_cvae(model_path)
    train = read_imageset(train_path)
    if tuple(module.hparams.class_names) != train.class_names:
        raise PipelineError(f"{model_path}: trained on other classes than {train_path}; rerun train_vae")
    cfg, selection, judge = choose_sampling(params, module.model, train, None if val_path is None else read_imageset(val_path))
    scorer = judge.class_probabilities if judge is not None and cfg.min_confidence > 0 else None
    tally = Tally()
    provenance = {"checkpoint": file_digest(model_path), "strategy": cfg.strategy, "temperature": cfg.temperature, "seed": params.seed}
    total = int(targets_per_class(cfg, train).sum())
    torch.manual_seed(params.seed)
    with Progress(disable=not show_progress, transient=True) as progress, ImageParquetWriter(
        out_path, train.class_names, train.image_shape, synthetic=True
    ) as writer:
        task = progress.add_task("generate", total=total)
        for batch in generate(module.model, train, cfg, params.seed, scorer, tally, lambda n: progress.advance(task, n)):
            writer.write(batch.images, batch.labels, {**provenance, "confidence": batch.confidence, "nn_distance": batch.nn_distance})
        drawn = sum(tally.drawn.values())
        if writer.rows == 0:  # raised inside the writer's block, so no file is renamed into place
            raise nothing_kept(cfg, tally, drawn)
    metrics = {
        "rows": writer.rows,
        "requested": total,
        "drawn": drawn,
        "acceptance_rate": writer.rows / drawn if drawn else 0.0,
        "rejected_confidence": tally.rejected_confidence,
        "rejected_near_copy": tally.rejected_copy,
        **({"selection": selection} if selection else {}),
    }
    if metrics_path is not None:
        write_json(metrics_path, metrics)
    return metrics


def nothing_kept(cfg: GenerateConfig, tally: Tally, drawn: int) -> PipelineError:
    """An empty synthetic set is a failed run, not a result: name the filter that emptied it."""
    if tally.rejected_confidence >= tally.rejected_copy:
        param, value, rejected = "generate.min_confidence", cfg.min_confidence, tally.rejected_confidence
    else:
        param, value, rejected = "generate.min_nn_distance", cfg.min_nn_distance, tally.rejected_copy
    return PipelineError(
        f"{param}: {value} rejected {rejected} of the {drawn} samples drawn and no synthetic row was kept; "
        f"lower {param}"
    )


@cli_guard
@lifecycle.stage
def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(
        __doc__, model="models/cvae.ckpt", train="data/processed/train.parquet", val="data/processed/val.parquet",
        out="data/synthetic/train.parquet", metrics="reports/generate.json",
    )
    args = parser.parse_args(argv)
    params = load_params(args.params)
    metrics = run(params, args.model, args.train, args.out, args.metrics, params.trainer.progress_bar, args.val)
    if "selection" in metrics:
        print(f"generate: chose on val: {describe(metrics['selection']['chosen'])}")
    print(f"generate: wrote {metrics['rows']} synthetic rows to {args.out} (acceptance {metrics['acceptance_rate']:.0%})")


if __name__ == "__main__":
    main()
