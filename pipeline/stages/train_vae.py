"""Stage 2: train the class-conditional VAE on the real training images only.

`val` is used for monitoring, early stopping and picking the best epoch; `test` is never read.
With images in `unlabeled` (`dataset.unlabeled_*`) and `vae.semi_supervised` auto or true, the
VAE trains semi-supervised (M2): it learns from those images too, their labels summed out.
Interrupted, even by SIGKILL? Rerun: training resumes from `models/.resume/train_vae/<key>/last.ckpt`,
where the key hashes the params and training data. dvclive logs into that folder too, and each
resume checkpoint carries a copy of the log as it was at that moment (`ResumePoint`), so a resumed
run writes the same log as an uninterrupted one; the finished log replaces `reports/vae` in one
rename, and the resume folder is removed once the checkpoint is written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np

from pytorch_lightning.utilities import rank_zero_only

from pipeline import lifecycle
from pipeline.atomic import atomic_path
from pipeline.config import Params, load_params
from pipeline.data.parquet import read_imageset, read_unlabeled
from pipeline.errors import cli_guard
from pipeline.models.training import GlobalRandomState, ResumePoint, dvclive_logger
from pipeline.models.vae import SampleGrid, fit_cvae, save_model
from pipeline.stages._cli import stage_parser


def resume_key(params: Params, train_path: Path, unlabeled: np.ndarray | None = None) -> str:
    digest = hashlib.sha256(train_path.read_bytes())
    if unlabeled is not None and len(unlabeled):
        digest.update(unlabeled.tobytes())
    digest.update(json.dumps([params.seed, params.vae.model_dump(), params.trainer.model_dump()], sort_keys=True).encode())
    return digest.hexdigest()[:16]


def run(
    params: Params, train_path: Path, val_path: Path, model_path: Path, live_dir: Path, unlabeled_path: Path | None = None
) -> dict:
    train, val = read_imageset(train_path), read_imageset(val_path)
    unlabeled = read_unlabeled(unlabeled_path) if unlabeled_path is not None and unlabeled_path.exists() else None
    resume_dir = model_path.parent / ".resume" / "train_vae" / resume_key(params, train_path, unlabeled)
    last = resume_dir / "last.ckpt"
    scratch = resume_dir / "live"
    if not last.exists():
        shutil.rmtree(scratch, ignore_errors=True)  # a log without a resume point to match it
    logger = dvclive_logger(str(scratch), resume=last.exists())
    module, best = fit_cvae(
        train, val, params.vae, params.trainer, params.seed, logger,
        [ResumePoint(last, scratch), SampleGrid(params.vae.sample_every_n_epochs), GlobalRandomState()],
        ckpt_path=str(last) if last.exists() else None, unlabeled=unlabeled,
    )
    # The epoch is chosen by `vae.best_epoch_by`; its true ELBO and KL (how much the latent is
    # used: near 0 nats means samples are per-class templates) are what a reader compares.
    summary = {"best_epoch": best.best_epoch + 1, "best_val_elbo": best.best_metrics.get("val/elbo"), "best_val_kl": best.best_metrics.get("val/kl")}
    if module.classifier is not None:  # semi-supervised: how well q(y|x) labels val at that epoch
        summary["best_val_accuracy"] = best.best_metrics.get("val/accuracy")
    if rank_zero_only.rank != 0:  # under DDP every rank gets here; one writes
        return summary
    live = logger.experiment
    # dvc.yaml declares this folder; with sample grids off (`vae.sample_every_n_epochs: 0`) it is
    # present and empty. (SampleGrid logs at least one grid whenever grids are on.)
    Path(live.plots_dir, "images").mkdir(parents=True, exist_ok=True)
    for key, value in summary.items():
        live.summary[key] = value
    live.make_summary()
    (scratch / "params.yaml").unlink(missing_ok=True)  # the checkpoint already keeps hparams
    with atomic_path(live_dir) as tmp:
        shutil.copytree(scratch, tmp)
    save_model(module, model_path)
    shutil.rmtree(resume_dir.parent, ignore_errors=True)  # this run's resume point and stale ones of other params
    with contextlib.suppress(OSError):
        resume_dir.parent.parent.rmdir()  # models/.resume, unless another stage's run waits there
    return summary


@cli_guard
@lifecycle.stage
def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(
        __doc__, train="data/processed/train.parquet", val="data/processed/val.parquet",
        unlabeled="data/processed/unlabeled.parquet", model="models/cvae.ckpt", live_dir="reports/vae",
    )
    args = parser.parse_args(argv)
    summary = run(load_params(args.params), args.train, args.val, args.model, args.live_dir, args.unlabeled)
    print(
        f"train_vae: kept epoch {summary['best_epoch']}: validation ELBO {summary['best_val_elbo']:.2f} per image, "
        f"KL {summary['best_val_kl']:.1f} nats"
    )


if __name__ == "__main__":
    main()
