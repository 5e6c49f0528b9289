"""`pipeline.bench` on tiny sizes: every figure is reported and positive. No timing assertions:
the numbers depend on the machine and on whatever else runs on it."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from rich.console import Console

from pipeline.bench import __main__ as cli
from pipeline.bench import dag, generation, measure, mnist, render
from pipeline.config import Params
from pipeline.errors import PipelineError
from pipeline.data.imageset import ImageSet

TINY = cli.Sizes(
    train_images=128, train_epochs=1, repeats=1, small_epochs=1, generate=(60,), mnist_images=300, mnist_train_steps=2,
    classifier_fits=2, classifier_steps=2, audit_per_class=(15,), audit_steps=2, audit_letters_per_class=25,  # 3 foreign images: one of each kind
    cell_sizes=(5,), hard_letters_per_class=25, cell_vae_epochs=1,
)
# One torch thread: two threads on a busy two-core machine can make each step 20x slower.
TINY_PARAMS = {
    "vae": {"hidden_channels": 8, "latent_dim": 4}, "trainer": {"progress_bar": False, "num_threads": 1}, "audit": {"samples": 8, "folds": 2},
    "evaluate": {"steps": 8, "budget": 2},
}


def in_process(fn, **kwargs) -> dict:
    """`measure.in_child` without the fresh interpreter (seconds of imports each)."""
    return {**fn(**kwargs), "peak_rss_mib": measure.rss_mib()}


def numbers(tree, path: str = "") -> list[tuple[str, float]]:
    """Every number in a JSON tree, with where it sits ("training.lightning_samples_per_s")."""
    if isinstance(tree, dict):
        return [pair for key, value in tree.items() for pair in numbers(value, f"{path}.{key}".lstrip("."))]
    if isinstance(tree, list):
        return [pair for i, value in enumerate(tree) for pair in numbers(value, f"{path}[{i}]")]
    return [(path, tree)] if isinstance(tree, (int, float)) and not isinstance(tree, bool) else []


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One `--quick --skip-dag --json --out` run at TINY sizes, children run in process."""
    tmp = tmp_path_factory.mktemp("bench")
    params_file = tmp / "params.yaml"
    params_file.write_text(yaml.safe_dump(TINY_PARAMS))
    out = tmp / "bench.json"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli, "QUICK", TINY)
        patch.setattr(measure, "in_child", in_process)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            cli.main(["--quick", "--skip-dag", "--json", "--params", str(params_file), "--out", str(out)])
    result = json.loads(printed.getvalue())  # exactly one JSON object, nothing else on stdout
    assert json.loads(out.read_text()) == result
    return result


def test_json_has_every_section_and_the_headline_keys(report: dict) -> None:
    assert {"machine", "lightning_samples_per_s", "plain_samples_per_s", "lightning_vs_plain_ratio"} <= set(report)
    assert {"training", "training_one_thread", "training_small_data", "generation", "mnist", "classifier_fits"} <= set(report)
    assert report["batched_fit_speedup"] > 0 and report["classifier_fits"]["batched_s"] > 0
    assert report["dag"] is None  # --skip-dag
    assert {"platform", "cpu_count", "torch", "date"} <= set(report["machine"])
    assert [g["samples"] for g in report["generation"]] == [60]
    assert report["generation"][0]["rows"] == 60
    assert {"preprocess", "generate", "data_path"} <= set(report["mnist"])
    runs = report["audit"]["runs"]
    assert [(run["case"], run["flip_share"]) for run in runs] == [
        ("digits 8x8, 15/class", 0.0), ("digits 8x8, 15/class", 0.05), ("letters 28x28, 15/class", 0.0), ("letters 28x28, 15/class", 0.05)
    ]
    assert runs[0]["image_shape"] == [1, 8, 8] and runs[2]["image_shape"] == [1, 28, 28]
    assert runs[0]["images"] == 150 and runs[0]["outliers"] == 0 and runs[1]["outliers"] == 3  # clean, then faults injected
    assert 0 <= runs[0]["vae"]["flips"]["flagged_share"] <= 1 and "auroc" not in runs[0]["vae"]["flips"]
    cells = report["cells"]
    assert [(c["case"], c["size"]) for c in cells] == [("digits 8x8", 5), ("hard letters 28x28", 5)]
    for c in cells:
        assert 0 < c["vae_s"] < c["wall_s"] and c["cpu_s"] > 0
        assert c["assessor_s"] > 0  # fitted once before the cell, not inside its wall time
        assert 0 <= c["label_fidelity"] <= 1
    assert {"flips", "outliers"} <= set(runs[1]["vae"])
    for run in runs[1::2]:
        assert list(run["rankings"]) == ["rank", "label_rank", "margin", "outlier_rank"]
        assert all({"flips", "outliers"} <= set(figures) for figures in run["rankings"].values())


def test_every_figure_is_finite_and_every_rate_time_and_size_positive(report: dict) -> None:
    figures = dict(numbers(report))
    assert len(figures) > 60
    assert all(math.isfinite(value) for value in figures.values())
    measured = ("_per_s", "_ratio", "_mib", "wall_s", "read_s", "_ms_per_step")
    signed = ("overhead", "logging")  # differences of two timings: noise can make them negative
    not_positive = {
        path: value
        for path, value in figures.items()
        if path.endswith(measured) and not any(word in path for word in signed) and value <= 0
    }
    assert not not_positive
    for key in ("lightning_samples_per_s", "plain_samples_per_s", "lightning_vs_plain_ratio"):
        assert report[key] > 0


def test_pngs_are_decoded_once_when_read_and_never_while_training(report: dict) -> None:
    data_path = report["mnist"]["data_path"]
    assert data_path["png_decodes_reading"] == data_path["train_images"] > 0
    assert data_path["png_decodes_training"] == 0


def test_the_table_renders(report: dict) -> None:
    console = Console(file=io.StringIO(), width=140)
    render.render(report, console)
    text = console.file.getvalue()
    assert "Lightning / plain" in text and "MNIST-sized" in text
    assert "letters 28x28" in text and "outlier_rank" in text  # the audit's rankings, both cases
    assert "hard letters 28x28" in text and "of it the VAE" in text  # the cell costs


def test_generation_runs_in_a_child_process_and_reports_its_memory(tmp_path: Path) -> None:
    images, labels = mnist.make_digit_like(40, size=8, num_classes=4)
    train = ImageSet(images[..., None], labels, ("a", "b", "c", "d"))
    params = Params.model_validate(TINY_PARAMS)
    [row] = generation.bench_generation((20,), train, params, tmp_path)
    assert row["rows"] == 20 and row["images_per_s"] > 0
    assert row["peak_rss_mib"] >= row["start_rss_mib"] > 0


def test_a_commands_peak_memory_is_its_own_not_the_parents(tmp_path: Path) -> None:
    ballast = np.ones(200 * 2**20, np.uint8)  # the parent holds 200 MiB more than it needs
    small = measure.run_command(["python", "-c", "pass"], tmp_path, tmp_path / "small.log")
    big = measure.run_command(["python", "-c", "import numpy; a = numpy.ones(150 * 2**20, 'u1')"], tmp_path, tmp_path / "big.log")
    assert small["peak_rss_mib"] < 100 < 150 < big["peak_rss_mib"] < 150 + ballast.nbytes / 2**20


def test_a_failing_command_names_itself(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="exit code 3"):
        measure.run_command(["python", "-c", "raise SystemExit(3)"], tmp_path, tmp_path / "fail.log")


def test_stages_run_producers_first() -> None:
    stages = yaml.safe_load((measure.ROOT / "dvc.yaml").read_text())["stages"]
    order = dag.stage_order(stages)
    assert sorted(order) == sorted(stages)
    assert order.index("preprocess") < order.index("train_vae") < order.index("generate") < order.index("report")
    shuffled = dict(reversed(list(stages.items())))
    assert dag.stage_order(shuffled)[0] == "preprocess"


def test_independent_stages_keep_file_order_and_a_cycle_is_named() -> None:
    stages = {
        "report": {"deps": ["out/b", "out/a"], "outs": ["report.md"]},
        "b": {"deps": ["raw"], "outs": ["out/b"]},
        "a": {"deps": ["raw"], "outs": ["out/a"]},
        "c": {"deps": ["raw"], "outs": ["out/c"]},
    }
    assert dag.stage_order(stages) == ["b", "a", "report", "c"]
    stages["b"]["deps"].append("report.md")  # b now needs report, which needs b
    with pytest.raises(PipelineError, match="cycle: .*(b -> report|report -> b)"):
        dag.stage_order(stages)


def test_a_child_must_be_importable_by_its_module_name() -> None:
    def local() -> dict:
        return {}

    local.__module__ = "__main__"  # what a function defined in `python -m pipeline.bench` would say
    with pytest.raises(ValueError, match="importable module"):
        measure.in_child(local)


def test_made_up_digits_have_every_class_and_differ_by_class() -> None:
    images, labels = mnist.make_digit_like(200, size=28, num_classes=10)
    assert images.shape == (200, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [20] * 10
    means = np.stack([images[labels == k].mean(0) for k in range(10)])
    assert np.abs(means[0] - means[5]).mean() > 10  # classes look different


def test_a_dag_stage_runs_from_its_dvc_yaml_command_in_a_copy_of_the_project(tmp_path: Path) -> None:
    [row] = dag.bench_dag(tmp_path, {"dataset": {"train_per_class": 3}}, only=["preprocess"])
    assert row["stage"] == "preprocess" and row["wall_s"] > 0 and row["peak_rss_mib"] > 0
    project = tmp_path / "project"
    assert (project / "data/processed/train.parquet").is_file()
    assert yaml.safe_load((project / "params.yaml").read_text())["dataset"]["train_per_class"] == 3


def test_the_letters_folder_has_every_letter_and_varied_images(tmp_path: Path) -> None:
    from pipeline.bench.letters import LETTERS, write_letter_folder
    from pipeline.audit.faults import GLYPHS

    root = write_letter_folder(tmp_path / "letters", per_class=3)
    assert sorted(p.name for p in root.iterdir()) == sorted(LETTERS) and not set(LETTERS) & set(GLYPHS)
    images = [np.asarray(Image.open(p)) for p in sorted((root / LETTERS[0]).glob("*.png"))]
    assert len(images) == 3 and images[0].shape == (28, 28) and images[0].max() > 100
    assert not np.array_equal(images[0], images[1])  # jittered, not copies


@pytest.mark.parametrize(("flag", "sections"), [
    ("--only-cells", {"cells"}),
    ("--only-cluster", {"ray_task_overhead_s", "ray_vs_processes_ratio", "cluster"}),
])
def test_one_part_alone_carries_the_machine_and_its_own_sections(tmp_path: Path, flag: str, sections: set[str]) -> None:
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(TINY_PARAMS))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli, "QUICK", TINY)
        patch.setattr(measure, "in_child", in_process)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            cli.main(["--quick", flag, "--json", "--params", str(params_file)])
    result = json.loads(printed.getvalue())
    assert set(result) == {"machine", "mode", "sizes"} | sections
    assert result["mode"] == "quick" and result["sizes"]["cell_sizes"] == [5]
    if flag == "--only-cells":
        assert [c["case"] for c in result["cells"]] == ["digits 8x8", "hard letters 28x28"]
    else:
        assert "skipped" in result["cluster"]  # TINY runs no cluster seeds
