"""Compare two runs: the params that differ, every metric with its change, both learning curves.

A run is a report folder (has metrics.json), a git revision or a DVC experiment name, tried in
that order. DVC finds an experiment's commit (`dvc exp show`); revisions and experiments are then
read with `git show`, so nothing is checked out and the working tree is left alone. Plain
`dvc metrics diff` shows numbers only; this adds the params and one figure, in a Markdown and a
self-contained HTML file that can be attached to a pull request.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline.atomic import write_text
from pipeline.errors import PipelineError, cli_guard
from pipeline.tools._cli import tool_parser

METRICS, CURVE, PARAMS = "reports/metrics.json", "reports/plots/learning_curve.csv", "params.yaml"
MISSING = "—"


@dataclass(frozen=True)
class Run:
    label: str  # the argument as given, and what it turned out to be
    metrics: dict  # flat: "n10.real_vae.acc_mean" -> value
    curve: list[dict[str, float]]  # learning_curve.csv rows: train_size and one column per arm
    params: dict | None  # flat; None when the run did not record its params


def flatten(tree: dict, prefix: str = "") -> dict:
    """Nested dicts to dotted keys; lists stay values (a param like train_sizes is one setting)."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def parse_run(label: str, metrics_text: str, curve_text: str | None, params_text: str | None) -> Run:
    """Parse what a run recorded; anything malformed is the user's to fix, so one clear line."""
    try:
        nested = json.loads(metrics_text)
        params = yaml.safe_load(params_text) if params_text is not None else {}
        if not isinstance(nested, dict) or not isinstance(params, dict):
            raise ValueError("expected a mapping at the top level")
        curve = read_curve(curve_text, nested)
    except (ValueError, TypeError, yaml.YAMLError) as err:  # JSONDecodeError is a ValueError
        raise PipelineError(f"{label}: unreadable metrics, learning curve or params ({err})") from None
    return Run(label, flatten(nested), curve, flatten(params) if params_text is not None else None)


def read_curve(curve_text: str | None, metrics: dict) -> list[dict[str, float]]:
    if curve_text is not None:
        return [{k: float(v) if v else math.nan for k, v in row.items()} for row in csv.DictReader(io.StringIO(curve_text))]
    # The CSV is derived from metrics.json, so a run without it still gets its curve.
    sizes = sorted(int(key[1:]) for key in metrics if key[1:].isdigit() and isinstance(metrics[key], dict))
    blocks = {s: metrics[f"n{s}"].items() for s in sizes}
    acc = {s: {arm: e["acc_mean"] for arm, e in blocks[s] if isinstance(e, dict) and "acc_mean" in e} for s in sizes}
    return [{"train_size": s, **{arm: math.nan if v is None else float(v) for arm, v in acc[s].items()}} for s in sizes]


def from_folder(folder: Path) -> Run:
    def read(path: Path) -> str | None:
        return path.read_text(encoding="utf-8") if path.is_file() else None

    metrics = read(folder / "metrics.json")
    return parse_run(f"{folder} (report folder)", metrics, read(folder / "plots" / "learning_curve.csv"), read(folder / "run_params.yaml"))


def git(repo: Path, *args: str) -> str | None:
    """stdout of a git command, or None when it fails (unknown revision, not a repo, no git)."""
    try:
        done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None
    return done.stdout if done.returncode == 0 else None


def experiment_commit(name: str, repo: Path) -> str | None:
    """The commit of DVC experiment `name`, or None; DVC itself resolves the name (`dvc exp show
    --rev`), as every `dvc exp` command does: an experiment of any baseline, and of several with
    this name the one based on HEAD. Several and none on HEAD: ambiguous, a user error."""
    argv = [sys.executable, "-m", "dvc", "exp", "show", "--json", f"--rev={name}", "--num=1", "--sha"]
    argv += ["--hide-workspace", "--hide-queued", "--hide-failed"]
    env = dict(os.environ, DVC_NO_ANALYTICS="1")
    try:
        done = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None
    if done.returncode != 0:  # not a DVC project, no such name, or several
        if f"ambiguous Git revision '{name}'" in done.stderr:
            raise PipelineError(
                f"{name}: several DVC experiments have this name, none based on HEAD"
                " (see `dvc exp list --all-commits`); pass a commit instead"
            )
        return None
    rows = json.loads(done.stdout or "[]")  # one row: the experiment's commit, as a baseline
    return rows[0]["rev"] if rows else None


def from_git(spec: str, commit: str, kind: str, repo: Path) -> Run:
    metrics = git(repo, "show", f"{commit}:{METRICS}")
    if metrics is None:
        raise PipelineError(f"{spec}: no {METRICS} at {kind} {commit[:7]} (was the pipeline run and committed there?)")
    label = f"{spec} ({kind} {commit[:7]})"
    return parse_run(label, metrics, git(repo, "show", f"{commit}:{CURVE}"), git(repo, "show", f"{commit}:{PARAMS}"))


def load_run(spec: str, repo: Path) -> Run:
    """A report folder, else a git revision, else a DVC experiment name."""
    if (Path(spec) / "metrics.json").is_file():
        return from_folder(Path(spec))
    revision = None if spec.startswith("-") else git(repo, "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}")
    if revision:
        return from_git(spec, revision.strip(), "git revision", repo)
    experiment = experiment_commit(spec, repo)
    if experiment:
        return from_git(spec, experiment, "DVC experiment", repo)
    if Path(spec).is_dir():
        raise PipelineError(f"{spec}: folder has no metrics.json (point at the report folder, e.g. reports/)")
    raise PipelineError(f"{spec}: not a report folder, git revision or DVC experiment in {repo.resolve()}")


def fmt(value: object, digits: bool = True) -> str:
    """Metrics to 4 decimals; params (digits=False) as written, so 0.002 stays 0.002."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float) and digits:
        return f"{value:.4f}"
    return (value if isinstance(value, str) else json.dumps(value)).replace("|", "\\|")


def delta(a: object, b: object) -> float | None:
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
    return b - a if numbers and not (math.isnan(a) or math.isnan(b)) else None


def param_rows(a: Run, b: Run) -> list[tuple[str, str, str]]:
    """(dotted key, A, B) for each param whose values differ or that only one run has."""
    keys = [k for k in dict.fromkeys([*a.params, *b.params]) if a.params.get(k, MISSING) != b.params.get(k, MISSING)]
    return [(k, *(fmt(r.params[k], digits=False) if k in r.params else MISSING for r in (a, b))) for k in keys]


def metric_rows(a: Run, b: Run) -> list[tuple[str, str, str, str]]:
    rows = []
    for key in dict.fromkeys([*a.metrics, *b.metrics]):
        va, vb = a.metrics.get(key, MISSING), b.metrics.get(key, MISSING)
        change = delta(va, vb)
        rows.append((key, *(v if v is MISSING else fmt(v) for v in (va, vb)), MISSING if change is None else f"{change:+.4f}"))
    return rows


def unrecorded(a: Run, b: Run) -> str:
    """Which runs lack params ("A", "B", "A and B" or ""): report folders made before run_params.yaml."""
    return " and ".join(name for name, run in (("A", a), ("B", b)) if run.params is None)


def render(a: Run, b: Run) -> str:
    if missing := unrecorded(a, b):
        params = f"Params not recorded for {missing}: no run_params.yaml in its report folder, or no params.yaml at its revision."
    else:
        rows = param_rows(a, b)
        params = "\n".join(["| param | A | B |", "|---|---|---|", *(f"| `{k}` | {va} | {vb} |" for k, va, vb in rows)]) if rows else "_no params differ_"
    metrics = "\n".join(["| metric | A | B | B − A |", "|---|---|---|---|", *(f"| `{k}` | {va} | {vb} | {d} |" for k, va, vb, d in metric_rows(a, b))])
    return f"""# Comparing two runs

- **A**: {a.label}
- **B**: {b.label}

## Params that differ

{params}

## Learning curves

![Learning curves](learning_curves.png)

Test accuracy by real training images per class: one colour per arm, solid = A, dashed = B.

## Metrics

Every metric of `metrics.json`; "{MISSING}" where a run does not have it, n/a where it is null.

{metrics}
"""


def plot_curves(a: Run, b: Run, path: Path) -> None:
    # Imported here: matplotlib takes a second that --help and the error paths do not need.
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from pipeline.evaluation import arms as registry
    from pipeline.reporting import charts

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    arms = list(dict.fromkeys(k for row in a.curve + b.curve for k in row if k != "train_size"))
    colours = {arm: registry.colour(arm, f"C{i}") for i, arm in enumerate(arms)}
    styles = {"A": {"linestyle": "-", "marker": "o"}, "B": {"linestyle": "--", "marker": "s", "markerfacecolor": "none"}}
    for run, style in ((a, styles["A"]), (b, styles["B"])):  # B's hollow squares keep A visible where they coincide
        for arm in arms:
            points = [(row["train_size"], row[arm] * 100) for row in run.curve if not math.isnan(row.get(arm, math.nan))]
            if points:
                ax.plot(*zip(*points), markersize=5, color=colours[arm], **style)
    sizes = sorted({int(row["train_size"]) for row in a.curve + b.curve})
    charts.size_accuracy_axes(ax, sizes)
    ax.set_title("Learning curves: A solid, B dashed")
    ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=colours[arm], label=registry.label(arm)) for arm in arms]
    handles += [Line2D([], [], color="black", label=f"{n}: {r.label}", **styles[n]) for n, r in (("A", a), ("B", b))]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    charts.save_figure(fig, path)


def compare(a: Run, b: Run, out: Path) -> str:
    """Write the figure, then the Markdown and its HTML twin; returns the Markdown."""
    from pipeline.reporting.html import to_html

    plot_curves(a, b, out / "learning_curves.png")
    text = render(a, b)
    write_text(out / "comparison.md", text)
    write_text(out / "comparison.html", to_html(text, out))
    return text


def summary(a: Run, b: Run, out: Path) -> str:
    """A few lines for the terminal: what differs and the largest accuracy changes."""
    lines = [f"A = {a.label}", f"B = {b.label}"]
    if missing := unrecorded(a, b):
        lines.append(f"params: not recorded for {missing}")
    else:
        rows = param_rows(a, b)
        lines.append("params that differ: " + (", ".join(f"{k} {va} -> {vb}" for k, va, vb in rows[:10]) if rows else "none"))
    changes = [(k, d) for k in a.metrics if k.endswith("acc_mean") and (d := delta(a.metrics[k], b.metrics.get(k)))]  # None and 0 skipped
    changes.sort(key=lambda kd: -abs(kd[1]))
    lines.append("largest accuracy changes (B - A): " + (", ".join(f"{k} {d * 100:+.1f} pts" for k, d in changes[:5]) or "none"))
    lines.append(f"wrote {out / 'comparison.md'}, {out / 'comparison.html'}, {out / 'learning_curves.png'}")
    return "\n".join(lines)


@cli_guard
def main(argv: list[str] | None = None) -> None:
    parser = tool_parser("pipeline.tools.compare", __doc__, f"""At a git revision or experiment it reads {METRICS}, {CURVE} and {PARAMS}.
examples:
  python -m pipeline.tools.compare HEAD~1 reports            # last commit vs the working copy's results
  python -m pipeline.tools.compare main my-exp --out /tmp/c  # a branch vs a `dvc exp run` experiment""",
    )
    parser.add_argument("a", help="run A: a report folder, a git revision or a DVC experiment name")
    parser.add_argument("b", help="run B, the same kinds; deltas are B - A")
    parser.add_argument("--out", type=Path, default=Path("comparison"), help="output folder (default: comparison/)")
    parser.add_argument("--repo", type=Path, default=Path("."), help="git repository for revisions and experiments (default: .)")
    args = parser.parse_args(argv)
    a, b = load_run(args.a, args.repo), load_run(args.b, args.repo)
    compare(a, b, args.out)
    print(summary(a, b, args.out))


if __name__ == "__main__":
    main()
