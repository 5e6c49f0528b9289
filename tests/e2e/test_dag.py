"""The real DAG, end to end, through `dvc repro` in a temporary copy of the project."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.datagen import make_image_folder
from tests.e2e.conftest import TINY, deep_update, make_project, run

pytestmark = pytest.mark.slow

OUTPUTS = [
    "data/processed/train.parquet",
    "data/processed/val.parquet",
    "data/processed/test.parquet",
    "data/processed/pool.parquet",
    "data/synthetic/train.parquet",
    "models/cvae.ckpt",
    "reports/metrics.json",
    "reports/evaluation.json",
    "reports/plots/learning_curve.csv",
    "reports/report.md",
    "reports/report.html",
    "reports/run_params.yaml",
    "reports/figures/learning_curve.png",
    "reports/figures/real_vs_synthetic.png",
    "data/audit/train.parquet",
    "reports/audit.json",
    "reports/figures/audit_suspects.png",
]


def digests(root: Path) -> dict[str, str]:
    return {name: hashlib.sha256((root / name).read_bytes()).hexdigest() for name in OUTPUTS}


def test_dag_runs_end_to_end_is_reproducible_and_compares(tiny_project: Path) -> None:
    """One project, several runs: the DAG, its contract, caching, determinism, a param change."""
    run(["dvc", "repro"], tiny_project)
    for name in OUTPUTS:
        assert (tiny_project / name).is_file(), name

    # the Parquet contract
    real = pq.read_schema(tiny_project / "data/processed/train.parquet")
    synthetic = pq.read_schema(tiny_project / "data/synthetic/train.parquet")
    assert str(real.field("image").type) == "struct<bytes: binary, path: string>"
    assert {"label", "label_name", "source"} <= set(real.names)
    assert {"checkpoint", "strategy", "temperature", "seed", "confidence", "nn_distance"} <= set(synthetic.names)
    assert b"huggingface" in real.metadata
    assert pq.read_table(tiny_project / "data/processed/train.parquet").num_rows == 3 * 10

    metrics = json.loads((tiny_project / "reports/metrics.json").read_text())
    assert set(metrics["n3"]) >= {"real", "real_classic", "real_vae", "real_classic_vae", "synthetic_only", "quality"}
    report = (tiny_project / "reports/report.md").read_text()
    assert "At 3 images per class" in report
    # the `auto` defaults were chosen on val, by the generate stage and in every cell, and reported
    chosen = json.loads((tiny_project / "reports/generate.json").read_text())["selection"]["chosen"]
    assert "auto" not in chosen.values()
    assert set(pq.read_table(tiny_project / "data/synthetic/train.parquet").column("strategy").to_pylist()) <= {chosen["strategy"]}
    assert "## Settings chosen on validation data" in report and "| 3 | real + VAE samples |" in report
    assert str(tiny_project) not in report  # no absolute paths in outputs

    # nothing left undeclared: a second repro has nothing to do, and dvc status is clean
    again = run(["dvc", "repro"], tiny_project)
    assert "didn't change" in again.stdout or "is cached" in again.stdout or "Data and pipelines are up to date" in again.stdout
    assert "up to date" in run(["dvc", "status"], tiny_project).stdout

    # the same params give byte-identical outputs
    first = digests(tiny_project)
    run(["dvc", "repro", "--force"], tiny_project)
    assert digests(tiny_project) == first

    # a param change reruns exactly its dependents, and compare shows the two runs side by side
    shutil.copytree(tiny_project / "reports", tiny_project / "run_a")
    params = tiny_project / "params.yaml"
    params.write_text(params.read_text().replace("latent_dim: 16", "latent_dim: 4"))
    status = run(["dvc", "status"], tiny_project).stdout
    assert "train_vae" in status and "evaluate" in status
    assert "preprocess:" not in status
    run(["dvc", "repro"], tiny_project)
    run(["python", "-m", "pipeline.tools.compare", "run_a", "reports", "--out", "cmp"], tiny_project)
    comparison = (tiny_project / "cmp" / "comparison.md").read_text()
    assert "vae.latent_dim" in comparison
    assert "n3.real_vae.acc_mean" in comparison
    assert (tiny_project / "cmp" / "learning_curves.png").stat().st_size > 0


def test_dag_on_a_28x28_image_folder(tmp_path: Path) -> None:
    params = deep_update(
        json.loads(json.dumps(TINY)),
        {"dataset": {"source": "image_folder", "path": "data/raw/shapes", "train_per_class": 3}},
    )
    project = make_project(tmp_path / "project", params)
    make_image_folder(project / "data/raw/shapes", num_classes=3, per_class=15, size=28, channels=1, seed=0)
    run(["dvc", "repro"], project)
    meta = json.loads(pq.read_schema(project / "data/synthetic/train.parquet").metadata[b"pipeline"])
    assert meta["image_shape"] == [1, 28, 28]
    assert (project / "reports/report.html").stat().st_size > 0


def test_bad_param_stops_with_one_line(tiny_project: Path) -> None:
    params = tiny_project / "params.yaml"
    params.write_text(params.read_text().replace("epochs: 3\n", "epochs: -3\n"))  # vae.epochs, not semi_supervised_vae.epochs: 30
    result = run(["python", "-m", "pipeline.stages.train_vae"], tiny_project, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: params.yaml: vae.epochs: Input should be greater than or equal to 1 (got -3)"]
