"""Wall time and peak memory of every `dvc.yaml` stage, run in a temporary copy of the project.

Each stage's `cmd` runs as a measured subprocess in dependency order; dvc itself is not needed,
so the numbers are the stage's own, without DVC's hashing and locking around it.
"""

from __future__ import annotations

import heapq
import shlex
import shutil
import subprocess
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import yaml

from pipeline.bench.measure import ROOT, run_command
from pipeline.errors import PipelineError

# The DAG under --quick: every stage and code path runs, in seconds rather than minutes.
QUICK_PARAMS = {
    "dataset": {"train_per_class": 3},
    "trainer": {"progress_bar": False},
    "vae": {"epochs": 3, "val_every_n_epochs": 1, "early_stopping_patience": 0, "sample_every_n_epochs": 2},
    "evaluate": {"seeds": [0, 1], "train_sizes": [3], "steps": 10, "classic_copies": 1},
}


def copy_project(dest: Path) -> Path:
    """Git-tracked files plus `pipeline/` (new modules may be untracked), without outputs."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True)
    names = [n for n in listed.stdout.split("\0") if n] if listed.returncode == 0 else []
    names += [str(p.relative_to(ROOT)) for p in (ROOT / "pipeline").rglob("*") if p.is_file()]
    names += ["dvc.yaml", "params.yaml"]
    for name in dict.fromkeys(names):
        if (ROOT / name).is_file() and "__pycache__" not in name:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    (dest / "data" / "raw").mkdir(parents=True, exist_ok=True)
    git = ["git", "-c", "user.email=bench@localhost", "-c", "user.name=bench"]
    for argv in (["git", "init", "-q"], [*git, "add", "-A"], [*git, "commit", "-qm", "bench"]):
        subprocess.run(argv, cwd=dest, capture_output=True)  # dvclive wants a commit; harmless without git
    return dest


def _paths(entries: list | None) -> list[str]:
    """dvc.yaml lists paths as plain strings or as one-key mappings {path: options}."""
    return [next(iter(e)) if isinstance(e, dict) else e for e in entries or []]


def _producers(stages: dict) -> dict[str, set[str]]:
    """Each stage -> the other stages whose outputs (or folders around them) it depends on."""
    made = {name: _paths(s.get("outs")) + _paths(s.get("metrics")) + _paths(s.get("plots")) for name, s in stages.items()}

    def needs(stage: str, other: str) -> bool:
        deps = _paths(stages[stage].get("deps"))
        return any(d == o or d.startswith(o + "/") or o.startswith(d + "/") for d in deps for o in made[other])

    return {stage: {other for other in stages if other != stage and needs(stage, other)} for stage in stages}


def stage_order(stages: dict) -> list[str]:
    """Stages with every producer before its consumers, otherwise in file order."""
    sorter = TopologicalSorter(_producers(stages))
    try:
        sorter.prepare()
    except CycleError as err:
        cycle = " -> ".join(err.args[1])
        raise PipelineError(f"bench: dvc.yaml stages depend on each other in a cycle: {cycle}") from None
    position = {name: i for i, name in enumerate(stages)}
    ready: list[tuple[int, str]] = []  # a heap: of the stages free to run, the first in the file goes next
    order: list[str] = []
    while sorter.is_active():
        for name in sorter.get_ready():
            heapq.heappush(ready, (position[name], name))
        _, name = heapq.heappop(ready)
        order.append(name)
        sorter.done(name)
    return order


def _deep_update(base: dict, changes: dict) -> dict:
    """`changes` merged into `base` (in place), nested mappings key by key."""
    for key, value in changes.items():
        base[key] = _deep_update(base.get(key) or {}, value) if isinstance(value, dict) else value
    return base


def bench_dag(workdir: Path, overrides: dict | None = None, only: list[str] | None = None) -> list[dict]:
    """Each stage's `cmd` from dvc.yaml, in order, as a measured subprocess (no dvc needed)."""
    project = copy_project(workdir / "project")
    params_file = project / "params.yaml"
    merged = _deep_update(yaml.safe_load(params_file.read_text()), overrides or {})
    params_file.write_text(yaml.safe_dump(merged, sort_keys=False))
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    results = []
    for name in stage_order(stages):
        if only is not None and name not in only:
            continue
        if "cmd" not in stages[name]:
            raise PipelineError(f"bench: stage {name!r} has no single cmd (foreach/matrix); time it with dvc repro")
        argv = shlex.split(stages[name]["cmd"])
        results.append({"stage": name, **run_command(argv, project, workdir / f"{name}.log")})
    return results
