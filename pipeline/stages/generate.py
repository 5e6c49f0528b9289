"""Stage 3: sample synthetic labeled images from the trained VAE into Parquet.

Settings left `auto` in params are first chosen on `val` (see `selection.py`): the classifier of
`evaluate.classifier` is fitted on the real training images plus each candidate's samples and the
best validation accuracy wins; the choice goes to the metrics file. Batches stream into the file
through pyarrow's writer, so memory stays bounded however many samples are asked for; the file
appears under its final name only when complete. Acceptance rates of the filters go to a small
metrics file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from rich.progress import Progress

from pipeline.atomic import write_json
from pipeline.config import GenerateConfig, Params, load_params
from pipeline.data.imageset import ImageSet
from pipeline.data.parquet import ImageParquetWriter, read_imageset
from pipeline.errors import PipelineError, cli_guard
from pipeline.evaluation.selection import SampleSearch, describe, fit_judge, generation_config
from pipeline.models.classify import Classifier, TrainingRows
from pipeline.models.cvae import CVAE
from pipeline.models.sampling import Tally, generate, targets_per_class
from pipeline.models.vae import file_digest, load_cvae


def resolve(params: Params, model: CVAE, train: ImageSet, val_path: Path | None) -> tuple[GenerateConfig, dict, Classifier | None]:
    """Concrete sampling settings: params' own, or the `auto` ones chosen on `val`.

    Returns (settings, selection record for the metrics file, the filter's judge if needed)."""
    # The filter's judge sees the same real images as the VAE, no more.
    judge = fit_judge(train, params, params.seed) if params.generate.min_confidence != 0 else None
    if params.generate.is_resolved():  # an `auto` synthetic_weight alone does not change the samples
        return params.generate, {}, judge
    if val_path is None:
        raise PipelineError("generate: `auto` settings need the val split (--val)")
    search = SampleSearch(params, model, train, read_imageset(val_path), params.seed, judge)
    selection, _ = search.choose(TrainingRows.of(train))
    return generation_config(params.generate, selection.chosen), selection.to_json(), judge


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
    cfg, selection, judge = resolve(params, module.model, train, val_path)
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


@cli_guard
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--model", type=Path, default=Path("models/cvae.ckpt"))
    parser.add_argument("--train", type=Path, default=Path("data/processed/train.parquet"))
    parser.add_argument("--val", type=Path, default=Path("data/processed/val.parquet"), help="for choosing `auto` settings")
    parser.add_argument("--out", type=Path, default=Path("data/synthetic/train.parquet"))
    parser.add_argument("--metrics", type=Path, default=Path("reports/generate.json"))
    args = parser.parse_args(argv)
    params = load_params(args.params)
    metrics = run(params, args.model, args.train, args.out, args.metrics, params.trainer.progress_bar, args.val)
    if "selection" in metrics:
        print(f"generate: chose on val: {describe(metrics['selection']['chosen'])}")
    print(f"generate: wrote {metrics['rows']} synthetic rows to {args.out} (acceptance {metrics['acceptance_rate']:.0%})")


if __name__ == "__main__":
    main()
