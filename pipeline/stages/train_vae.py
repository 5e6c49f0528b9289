"""Stage 2: train the class-conditional VAE on the real training images only.

`val` is used for monitoring, early stopping and picking the best epoch; `test` is never read.
Interrupted? Rerun: training resumes from `models/.resume/<key>/last.ckpt`, where the key hashes
the params and training data, and that folder is removed once the checkpoint is written.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities import rank_zero_only

from pipeline.config import Params, load_params
from pipeline.data.parquet import read_imageset
from pipeline.errors import cli_guard
from pipeline.models.vae import SampleGrid, fit_cvae, save_model


def resume_key(params: Params, train_path: Path) -> str:
    digest = hashlib.sha256(train_path.read_bytes())
    digest.update(json.dumps([params.seed, params.vae.model_dump(), params.trainer.model_dump()], sort_keys=True).encode())
    return digest.hexdigest()[:16]


def run(params: Params, train_path: Path, val_path: Path, model_path: Path, live_dir: Path) -> dict:
    from dvclive.lightning import DVCLiveLogger

    train, val = read_imageset(train_path), read_imageset(val_path)
    resume_dir = model_path.parent / ".resume" / resume_key(params, train_path)
    last = resume_dir / "last.ckpt"
    # One rolling checkpoint of the latest epoch, overwritten in place: all that resuming needs.
    checkpoints = ModelCheckpoint(dirpath=resume_dir, filename="last", save_top_k=1, enable_version_counter=False)
    logger = DVCLiveLogger(dir=str(live_dir), dvcyaml=None, save_dvc_exp=False, resume=last.exists())
    module, best = fit_cvae(
        train, val, params.vae, params.trainer, params.seed, logger,
        [checkpoints, SampleGrid(params.vae.sample_every_n_epochs)],
        ckpt_path=str(last) if last.exists() else None,
    )
    summary = {"best_epoch": best.best_epoch + 1, "best_val_elbo": best.best_score}
    if rank_zero_only.rank != 0:  # under DDP every rank gets here; one writes
        return summary
    live = logger.experiment
    for key, value in summary.items():
        live.summary[key] = value
    live.make_summary()
    (live_dir / "params.yaml").unlink(missing_ok=True)  # the checkpoint already keeps hparams
    save_model(module, model_path)
    shutil.rmtree(resume_dir, ignore_errors=True)
    return summary


@cli_guard
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--train", type=Path, default=Path("data/processed/train.parquet"))
    parser.add_argument("--val", type=Path, default=Path("data/processed/val.parquet"))
    parser.add_argument("--model", type=Path, default=Path("models/cvae.ckpt"))
    parser.add_argument("--live-dir", type=Path, default=Path("reports/vae"))
    args = parser.parse_args(argv)
    summary = run(load_params(args.params), args.train, args.val, args.model, args.live_dir)
    print(f"train_vae: best validation ELBO {summary['best_val_elbo']:.2f} nats at epoch {summary['best_epoch']}")


if __name__ == "__main__":
    main()
