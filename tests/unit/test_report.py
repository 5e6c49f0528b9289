"""The report is computed from the metrics files, never written by hand."""

import argparse
import json
from pathlib import Path

import pytest

from pipeline.stages import audit, generate, report, train_vae
from pipeline.config import Params, parse_params
from pipeline.evaluation.learning_curve import summarize
from pipeline.evaluation.quality_suite import SUITE_KEYS
from pipeline.reporting.report import back_off_text
from pipeline.stages.evaluate import write_outputs
from pipeline.stages.preprocess import run as preprocess
from tests.unit.test_cell import fake_cells


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, tiny_params: Params) -> Path:
    root = tmp_path_factory.mktemp("run")
    (root / "reports").mkdir()
    preprocess(tiny_params, root / "data", root / "reports" / "data.json")
    train_vae.run(tiny_params, root / "data/train.parquet", root / "data/val.parquet", root / "models/cvae.ckpt", root / "reports/vae")
    generate.run(tiny_params, root / "models/cvae.ckpt", root / "data/train.parquet", root / "syn.parquet", root / "reports/generate.json", show_progress=False, val_path=root / "data/val.parquet")
    audit.run(tiny_params, {name: root / f"data/{name}.parquet" for name in audit.SPLITS}, root / "audit.parquet", root / "reports/audit.json")
    return root


def write_metrics(root: Path, shift: float) -> None:
    cells = fake_cells([3], [0, 1, 2], shift=0.0)
    for cell in cells:  # a noisy gain of about `shift` for the VAE arms; ten digit classes
        for arm in ("real_vae", "real_classic_vae"):
            cell["scores"][arm]["acc"] += shift + 0.002 * cell["seed"]
        for scores in cell["scores"].values():
            scores["per_class"] = [scores["acc"]] * 10
        cell["quality"]["per_class"] = {key: [0.5] * 10 for key in SUITE_KEYS}
        # tried settings whose Fréchet distance falls as their val gain rises; the rest do not vary
        cell["quality_tries"] = [{"arm": "real_vae", "try": i, "gain": g, "quality": {**cell["quality"], "fd": 10.0 - 100 * g}}
                                 for i, g in enumerate((0.01 * cell["seed"], -0.02, 0.03, 0.0))]
    full = [{"acc": 0.9, "f1": 0.9}] * 3
    write_outputs(summarize(cells, full, [3]), cells, full, root / "reports")


def make(root: Path, params: Params) -> str:
    paths = argparse.Namespace(reports_dir=root / "reports", data_dir=root / "data", synthetic=root / "syn.parquet", model=root / "models/cvae.ckpt", audit=root / "audit.parquet")
    return report.run(params, paths)


@pytest.mark.parametrize(("shift", "opening", "numbers"), [
    (0.05, "**Yes: VAE samples help", "+5.2 points of accuracy"),
    (-0.05, "**No: VAE samples hurt", "-4.8 points, a significant loss"),
    (0.0, "**Not shown", "not significant"),
])
def test_verdict_follows_the_metrics(run_dir: Path, tiny_params: Params, shift: float, opening: str, numbers: str) -> None:
    write_metrics(run_dir, shift)
    text = make(run_dir, tiny_params)
    assert text.split("\n\n")[1].startswith(opening)
    assert numbers in text
    assert (run_dir / "reports/report.md").read_text() == text
    html = (run_dir / "reports/report.html").read_text()
    assert "data:image/png;base64," in html and 'src="figures/' not in html  # self-contained
    for name in ("learning_curve", "gains", "vae_training", "real_vs_synthetic", "reconstructions", "latent_map", "interpolations", "audit_suspects"):
        assert (run_dir / "reports/figures" / f"{name}.png").stat().st_size > 0
    assert json.loads((run_dir / "reports/data.json").read_text())["rows"]["test"] > 0
    assert "train_per_class: 5" in text  # the params that produced it
    assert "## Label audit" in text and "figures/audit_suspects.png" in text
    assert "| detection AUROC | " in text and "| identifiability | " in text  # the suite in the quality table
    assert "metric that best tracks whether a sampling setting helps is Fréchet distance (ρ = -1.00" in text
    assert (run_dir / "reports/figures/quality_vs_gain.png").stat().st_size > 0
    assert "`label_rank`" in text and "`outlier_rank`" in text  # the top of each review queue


def test_missing_metrics_is_one_clear_line(tmp_path: Path, tiny_params: Params) -> None:
    with pytest.raises(Exception, match="metrics.json: not found"):
        make(tmp_path, tiny_params)


@pytest.mark.parametrize(
    ("changes", "balanced", "rare"),
    [
        ({}, "`ratio` 1 at `synthetic_weight` 0.1", "`synthetic_weight` 0.1"),  # rare arms add by rare_fill, not ratio
        ({"evaluate": {"synthetic_weight": 0.5}}, "`ratio` 1", ""),
        ({"generate": {"ratio": 1.0}, "evaluate": {"synthetic_weight": 0.5}}, "", ""),  # nothing to back off to
    ],
)
def test_the_report_says_what_the_back_off_try_changes(changes: dict, balanced: str, rare: str) -> None:
    params = parse_params(changes)
    assert back_off_text(params) == balanced
    assert back_off_text(params, "vae_rare") == rare
