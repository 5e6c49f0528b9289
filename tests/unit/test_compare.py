"""`python -m pipeline.tools.compare` on fake report folders and a throwaway git repo: no training."""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from pipeline.tools.compare import flatten, load_run, main
from pipeline.errors import PipelineError

METRICS_A = {
    "full": {"acc_mean": 0.9},
    "n5": {"real": {"acc_mean": 0.6, "acc_lo": 0.55}, "real_vae": {"acc_mean": 0.65, "gain_mean": 0.05}},
    "n10": {"real": {"acc_mean": 0.8}, "real_vae": {"acc_mean": 0.82}},
}
METRICS_B = copy.deepcopy(METRICS_A)
METRICS_B["n5"]["real_vae"]["acc_mean"] = 0.7
METRICS_B["n5"]["real"]["acc_lo"] = None
del METRICS_B["n5"]["real_vae"]["gain_mean"]
METRICS_B["n10"]["quality"] = {"fd": 12.5}
PARAMS_A = {"seed": 0, "vae": {"epochs": 150, "lr": 0.002}, "evaluate": {"train_sizes": [5, 10]}}
PARAMS_B = {"seed": 0, "vae": {"epochs": 50, "lr": 0.002}, "evaluate": {"train_sizes": [5, 10]}}


def curve_csv(metrics: dict) -> str:
    rows = [f"{s},{metrics[f'n{s}']['real']['acc_mean']},{metrics[f'n{s}']['real_vae']['acc_mean']},{metrics['full']['acc_mean']}" for s in (5, 10)]
    return "\n".join(["train_size,real,real_vae,full", *rows]) + "\n"


def write_run(root: Path, metrics: dict, params: dict, layout: str = "folder") -> Path:
    """A report folder (run_params.yaml inside) or a project tree (reports/, params.yaml at the top)."""
    reports = root if layout == "folder" else root / "reports"
    (reports / "plots").mkdir(parents=True, exist_ok=True)
    (reports / "metrics.json").write_text(json.dumps(metrics))
    (reports / "plots" / "learning_curve.csv").write_text(curve_csv(metrics))
    (reports / "run_params.yaml" if layout == "folder" else root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


def compare(capsys: pytest.CaptureFixture, *argv: str) -> tuple[str, str]:
    main([str(a) for a in argv])
    out_dir = Path(argv[argv.index("--out") + 1])
    return (out_dir / "comparison.md").read_text(), capsys.readouterr().out


def test_flatten_joins_nested_keys_with_dots() -> None:
    assert flatten({"n5": {"real": {"acc_mean": 0.5}}, "seed": 0, "sizes": [5]}) == {"n5.real.acc_mean": 0.5, "seed": 0, "sizes": [5]}


def test_two_folders_give_param_diff_deltas_and_figure(tmp_path: Path, capsys) -> None:
    a, b = write_run(tmp_path / "a", METRICS_A, PARAMS_A), write_run(tmp_path / "b", METRICS_B, PARAMS_B)
    text, stdout = compare(capsys, a, b, "--out", tmp_path / "cmp")
    assert "| `vae.epochs` | 150 | 50 |" in text
    assert "vae.lr" not in text and "evaluate.train_sizes" not in text
    assert "| `n5.real_vae.acc_mean` | 0.6500 | 0.7000 | +0.0500 |" in text
    assert "| `n10.real.acc_mean` | 0.8000 | 0.8000 | +0.0000 |" in text
    assert "| `n5.real_vae.gain_mean` | 0.0500 | — | — |" in text  # only in A
    assert "| `n10.quality.fd` | — | 12.5000 | — |" in text  # only in B
    assert "| `n5.real.acc_lo` | 0.5500 | n/a | — |" in text  # null in B
    assert "vae.epochs 150 -> 50" in stdout and "n5.real_vae.acc_mean +5.0 pts" in stdout
    with Image.open(tmp_path / "cmp" / "learning_curves.png") as png:
        assert png.format == "PNG" and png.width > 400 and png.height > 300
    html = (tmp_path / "cmp" / "comparison.html").read_text()
    assert "data:image/png;base64," in html and "<table>" in html


def test_same_params_say_so_and_missing_params_are_named(tmp_path: Path, capsys) -> None:
    a, b = write_run(tmp_path / "a", METRICS_A, PARAMS_A), write_run(tmp_path / "b", METRICS_B, PARAMS_A)
    text, _ = compare(capsys, a, b, "--out", tmp_path / "cmp")
    assert "no params differ" in text
    (b / "run_params.yaml").unlink()
    (b / "plots" / "learning_curve.csv").unlink()  # the curve is then rebuilt from metrics.json
    assert load_run(str(b), tmp_path).curve == [{"train_size": 5, "real": 0.6, "real_vae": 0.7}, {"train_size": 10, "real": 0.8, "real_vae": 0.82}]
    text, _ = compare(capsys, a, b, "--out", tmp_path / "cmp")
    assert "Params not recorded for B:" in text


def git(repo: Path, *args: str) -> str:
    config = ["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]
    return subprocess.run(["git", *config, *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, str, str]:
    """A project repo with two committed runs; returns (repo, first sha, second sha)."""
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    root = tmp_path / "project"
    root.mkdir()
    git(root, "init", "-q")
    shas = []
    for metrics, params in ((METRICS_A, PARAMS_A), (METRICS_B, PARAMS_B)):
        write_run(root, metrics, params, layout="project")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "run")
        shas.append(git(root, "rev-parse", "HEAD"))
    return root, shas[0], shas[1]


def test_git_revisions(repo, tmp_path: Path, capsys) -> None:
    root, first, second = repo
    text, _ = compare(capsys, first, second, "--repo", root, "--out", tmp_path / "cmp")
    assert f"{second} (git revision {second[:7]})" in text
    assert "| `vae.epochs` | 150 | 50 |" in text and "| `n5.real_vae.acc_mean` | 0.6500 | 0.7000 | +0.0500 |" in text


def dvc(repo: Path, *args: str) -> None:
    env = dict(os.environ, DVC_NO_ANALYTICS="1")
    subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, env=env, check=True, capture_output=True)


# The one stage of the DVC project below: the run its params pick, copied into reports/.
STAGE = """import shutil, yaml
epochs = yaml.safe_load(open("params.yaml"))["vae"]["epochs"]
shutil.copytree(f"runs/{epochs}", "reports", dirs_exist_ok=True)
"""


@pytest.fixture(scope="module")
def dvc_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A DVC project with real experiments: `tiny-exp` (`dvc exp run`, vae.epochs 150 -> 50) on the
    first commit, and `twin` saved on two commits, neither HEAD. Returns (repo, first commit)."""
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    root = tmp_path_factory.mktemp("dvc") / "project"
    root.mkdir()
    git(root, "init", "-q")
    for key, value in (("user.name", "t"), ("user.email", "t@example.com"), ("commit.gpgsign", "false")):
        git(root, "config", key, value)  # `dvc exp` commits with the repo's own identity
    dvc(root, "init", "-q")
    for metrics, params in ((METRICS_A, PARAMS_A), (METRICS_B, PARAMS_B)):
        write_run(root / "runs" / str(params["vae"]["epochs"]), metrics, params)
    (root / "params.yaml").write_text(yaml.safe_dump(PARAMS_A))
    (root / "stage.py").write_text(STAGE)
    stage = {
        "cmd": f"{shlex.quote(sys.executable)} stage.py",
        "deps": ["stage.py", "runs"],
        "params": ["vae.epochs"],
        "metrics": [{"reports/metrics.json": {"cache": False}}],
        "plots": [{"reports/plots/learning_curve.csv": {"cache": False}}],
    }
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"run": stage}}))
    dvc(root, "repro", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "baseline")
    first = git(root, "rev-parse", "HEAD")
    dvc(root, "exp", "run", "-q", "-n", "tiny-exp", "--set-param", "vae.epochs=50")
    for message in ("second", "third"):
        dvc(root, "exp", "save", "-q", "-n", "twin")
        git(root, "commit", "-q", "--allow-empty", "-m", message)
    return root, first


def test_a_dvc_experiment_is_found_by_name_on_any_baseline(dvc_project, tmp_path: Path, capsys) -> None:
    root, first = dvc_project
    text, _ = compare(capsys, first, "tiny-exp", "--repo", root, "--out", tmp_path / "cmp")
    [commit] = re.findall(r"tiny-exp \(DVC experiment ([0-9a-f]{7})\)", text)
    assert git(root, "rev-parse", f"{commit}^") == first  # the experiment's commit sits on its baseline
    assert "| `vae.epochs` | 150 | 50 |" in text and "| `n5.real_vae.acc_mean` | 0.6500 | 0.7000 | +0.0500 |" in text


def test_an_ambiguous_experiment_name_is_one_user_error(dvc_project, tmp_path: Path, capsys) -> None:
    root, _ = dvc_project
    with pytest.raises(SystemExit) as exit_info:
        main(["HEAD", "twin", "--repo", str(root), "--out", str(tmp_path / "cmp")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: twin: several DVC experiments have this name") and err.count("\n") == 1


def test_revision_without_metrics_is_a_user_error(repo) -> None:
    root, _, _ = repo
    git(root, "rm", "-q", "reports/metrics.json")
    git(root, "commit", "-q", "-m", "drop metrics")
    with pytest.raises(PipelineError, match="no reports/metrics.json at git revision"):
        load_run("HEAD", root)


@pytest.mark.parametrize("spec", ["no-such-run", "empty_folder"])
def test_unknown_run_is_one_line_and_exit_2(tmp_path: Path, capsys, spec: str) -> None:
    (tmp_path / "empty_folder").mkdir()
    a = write_run(tmp_path / "a", METRICS_A, PARAMS_A)
    with pytest.raises(SystemExit) as exit_info:
        main([str(a), str(tmp_path / spec), "--repo", str(tmp_path), "--out", str(tmp_path / "cmp")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and spec in err
    assert not (tmp_path / "cmp").exists()


def test_unreadable_metrics_is_a_user_error(tmp_path: Path) -> None:
    folder = write_run(tmp_path / "a", METRICS_A, PARAMS_A)
    (folder / "metrics.json").write_text("{not json")
    with pytest.raises(PipelineError, match="unreadable"):
        load_run(str(folder), tmp_path)
