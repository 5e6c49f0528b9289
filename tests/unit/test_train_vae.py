import math
from pathlib import Path

import pytest
import torch
import yaml

from pipeline.models import vae
from pipeline.stages import train_vae
from pipeline.config import Params
from pipeline.data.datamodule import ImageDataModule
from pipeline.errors import PipelineError
from pipeline.models.vae import load_cvae
from pipeline.data.parquet import read_imageset
from pipeline.models.training import make_trainer


def stage(params: Params, digits_dir: Path, out: Path) -> dict:
    return train_vae.run(params, digits_dir / "train.parquet", digits_dir / "val.parquet", out / "models" / "cvae.ckpt", out / "live")


def test_stage_writes_a_loadable_lean_checkpoint_and_dvclive_logs(tiny_params: Params, digits_dir: Path, tmp_path: Path) -> None:
    summary = stage(tiny_params, digits_dir, tmp_path)
    assert math.isfinite(summary["best_val_elbo"]) and 1 <= summary["best_epoch"] <= 4
    module = load_cvae(tmp_path / "models" / "cvae.ckpt")
    assert module.hparams.class_names == [str(i) for i in range(10)]
    raw = torch.load(tmp_path / "models" / "cvae.ckpt", weights_only=True)
    assert set(raw) == {"state_dict", "hyper_parameters", "pytorch-lightning_version"}  # no optimizer, no paths
    assert (tmp_path / "live" / "metrics.json").exists()
    assert (tmp_path / "live" / "plots" / "metrics" / "val" / "elbo.tsv").exists()
    assert list((tmp_path / "live" / "plots" / "images" / "samples").glob("*.png"))
    assert not (tmp_path / "models" / ".resume").exists() or not any((tmp_path / "models" / ".resume").iterdir())


def declared_outputs(stage_name: str) -> list[str]:
    """Paths a dvc.yaml stage promises to write: its outs, metrics and plots."""
    spec = yaml.safe_load((Path(__file__).resolve().parents[2] / "dvc.yaml").read_text())["stages"][stage_name]
    entries = [*spec.get("outs", []), *spec.get("metrics", []), *spec.get("plots", [])]
    return [next(iter(entry)) if isinstance(entry, dict) else entry for entry in entries]


@pytest.mark.parametrize("every", [3, 0], ids=["fewer-epochs-than-the-interval", "sampling-off"])
def test_a_short_run_writes_every_declared_output(tiny_params: Params, digits_dir: Path, tmp_path: Path, every: int) -> None:
    params = tiny_params.model_copy(update={"vae": tiny_params.vae.model_copy(update={"epochs": 2, "sample_every_n_epochs": every})})
    train_vae.run(params, digits_dir / "train.parquet", digits_dir / "val.parquet", tmp_path / "models" / "cvae.ckpt", tmp_path / "reports" / "vae")
    outputs = declared_outputs("train_vae")
    assert "reports/vae/plots/images" in outputs
    assert [path for path in outputs if not (tmp_path / path).exists()] == []
    grids = sorted(p.name for p in (tmp_path / "reports" / "vae" / "plots" / "images").rglob("*.png"))
    assert grids == (["epoch_0002.png"] if every else [])  # the last epoch's grid, or none when off


def test_interrupted_training_resumes_from_its_last_checkpoint(tiny_params: Params, digits_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log_grid = vae.SampleGrid.on_train_epoch_end

    def crash(self, trainer, module):
        if trainer.current_epoch == 2:
            raise RuntimeError("power cut")
        log_grid(self, trainer, module)

    with monkeypatch.context() as patch:
        patch.setattr(vae.SampleGrid, "on_train_epoch_end", crash)
        with pytest.raises(RuntimeError, match="power cut"):
            stage(tiny_params, digits_dir, tmp_path)
    assert not (tmp_path / "models" / "cvae.ckpt").exists()  # nothing half-written
    assert list((tmp_path / "models" / ".resume").glob("train_vae/*/last.ckpt"))

    seen = {}
    real_fit = train_vae.fit_cvae

    def spy(*args, **kwargs):
        seen["ckpt_path"] = kwargs.get("ckpt_path")
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(train_vae, "fit_cvae", spy)
    stage(tiny_params, digits_dir, tmp_path)
    assert seen["ckpt_path"] and seen["ckpt_path"].endswith("last.ckpt")
    # The resumed run's checkpoint and log are those of a run never interrupted, byte for byte.
    stage(tiny_params, digits_dir, tmp_path / "whole")
    assert files_of(tmp_path / "live") == files_of(tmp_path / "whole" / "live")
    assert (tmp_path / "models" / "cvae.ckpt").read_bytes() == (tmp_path / "whole" / "models" / "cvae.ckpt").read_bytes()
    assert not (tmp_path / "models" / ".resume").exists()


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_training_is_deterministic(tiny_params: Params, digits_dir: Path) -> None:
    train, val = read_imageset(digits_dir / "train.parquet"), read_imageset(digits_dir / "val.parquet")
    first, _ = vae.fit_cvae(train, val, tiny_params.vae, tiny_params.trainer, seed=1)
    second, _ = vae.fit_cvae(train, val, tiny_params.vae, tiny_params.trainer, seed=1)
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)


def test_a_diverging_loss_stops_with_a_hint(tiny_params: Params, digits_dir: Path) -> None:
    train, val = read_imageset(digits_dir / "train.parquet"), read_imageset(digits_dir / "val.parquet")
    module = vae.build_module(train, tiny_params.vae.model_copy(update={"likelihood": "gaussian"}))
    module.model.log_sigma.data.fill_(float("nan"))  # what a too-large learning rate ends in
    trainer = make_trainer(tiny_params.trainer, 1, progress_bar=False)
    with pytest.raises(PipelineError, match="lower vae.lr"):
        trainer.fit(module, datamodule=ImageDataModule(train, val, 16))


def test_the_dvclive_logger_syncs_where_dvclive_would() -> None:
    """Our logger decides dvclive's `sync` from frame names (dvclive reads every frame's source):
    inside Lightning's metric-update functions yes, elsewhere no."""
    from pipeline.models.training import SYNC_POINTS, called_from

    def update_train_epoch_metrics() -> bool:  # the name Lightning's logger connector calls it by
        return called_from(SYNC_POINTS)

    def log_eval_end_metrics() -> bool:
        return (lambda: called_from(SYNC_POINTS))()  # deeper in the stack too

    assert update_train_epoch_metrics() and log_eval_end_metrics()
    assert not called_from(SYNC_POINTS)


def test_unlabeled_images_train_the_semi_supervised_vae(tiny_params: Params, digits_dir: Path, tmp_path: Path) -> None:
    from pipeline.data.parquet import write_unlabeled

    pool = read_imageset(digits_dir / "pool.parquet")
    write_unlabeled(tmp_path / "unlabeled.parquet", pool.images[:40], pool.class_names)
    paths = (digits_dir / "train.parquet", digits_dir / "val.parquet")
    summary = train_vae.run(tiny_params, *paths, tmp_path / "semi.ckpt", tmp_path / "live", tmp_path / "unlabeled.parquet")
    assert 0 <= summary["best_val_accuracy"] <= 1
    module = load_cvae(tmp_path / "semi.ckpt")
    assert module.hparams.semi_supervised and module.classifier is not None
    probs = module.classify(torch.from_numpy(pool.as_float()[:5]))
    assert probs.shape == (5, 10) and torch.allclose(probs.sum(1), torch.ones(5))
    # the default run's empty file (and semi_supervised: false) train the plain VAE, its checkpoint as before
    train_vae.run(tiny_params, *paths, tmp_path / "plain.ckpt", tmp_path / "live2", digits_dir / "unlabeled.parquet")
    off = tiny_params.model_copy(update={"vae": tiny_params.vae.model_copy(update={"semi_supervised": False})})
    train_vae.run(off, *paths, tmp_path / "off.ckpt", tmp_path / "live3", tmp_path / "unlabeled.parquet")
    for name in ("plain.ckpt", "off.ckpt"):
        raw = torch.load(tmp_path / name, weights_only=True)
        assert not set(vae.SEMI_SUPERVISED_KEYS) & set(raw["hyper_parameters"])
        assert not any(key.startswith("classifier.") for key in raw["state_dict"])
    with pytest.raises(PipelineError, match="q\\(y\\|x\\)"):
        load_cvae(tmp_path / "plain.ckpt").classify(torch.zeros(1, 1, 8, 8))
