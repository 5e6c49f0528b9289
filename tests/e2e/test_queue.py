"""Two experiments from DVC's queue, run side by side, give what each one gives alone.

`dvc queue start --jobs 2` runs each queued experiment in its own temporary copy of the repository
(`.dvc/tmp/exps/tmp*`, git-tracked files only) sharing one DVC cache, in background workers. A shared
path outside the workspace, a fixed temporary file name or an absolute path in an output would make
the two runs disturb each other or differ from a run in the workspace; this test would see it.
"""

from __future__ import annotations

import copy
import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import TINY, deep_update, make_project, run, tool_env

pytestmark = [pytest.mark.slow, pytest.mark.soak]

# One seed per experiment and a small audit keep it cheap. The two experiments differ only in
# `evaluate.seeds`, so their upstream stages are the same: both runs write the same outputs into the
# shared cache at the same time, and their `evaluate` and `report` differ.
PARAMS = deep_update(copy.deepcopy(TINY), {"evaluate": {"seeds": [0], "budget": 2}, "audit": {"samples": 4}})
SEEDS = ([0], [1])
# Every git-tracked output (`cache: false`) and dvc.lock, which holds the md5 of every cached output.
COMPARED = [
    "dvc.lock",
    "reports/data.json",
    "reports/vae/metrics.json",
    "reports/vae/plots/metrics/val/objective.tsv",
    "reports/generate.json",
    "reports/audit.json",
    "reports/metrics.json",
    "reports/evaluation.json",
    "reports/plots/results.csv",
    "reports/report.md",
    "reports/report.html",
    "reports/figures/learning_curve.png",
]
TIMEOUT_S = 1200  # generous: the whole test took 8 min at load 4.5 and 17 min at load 14 on 2 cores
POLL_S = 2


def outputs_alone(tmp_path: Path) -> dict[str, dict[str, bytes]]:
    """Each experiment run alone, in the workspace of a second copy (its own cache and run cache)."""
    project = make_project(tmp_path / "alone", PARAMS)
    found = {}
    for seeds in SEEDS:
        run(["dvc", "exp", "run", "-S", f"evaluate.seeds={seeds}"], project)
        found[str(seeds)] = {name: (project / name).read_bytes() for name in COMPARED}
    return found


def queue_status(project: Path) -> str:
    return run(["dvc", "queue", "status"], project).stdout


def wait_for_queue(project: Path) -> str:
    """Wait until the workers have exited (they do once the queue is empty); return `dvc queue status`."""
    start = time.monotonic()
    while time.monotonic() < start + TIMEOUT_S:
        time.sleep(POLL_S)
        if worker_pids(project):  # cheap, where `dvc queue status` costs a second of CPU
            continue
        status = queue_status(project)
        if "0 active, 0 idle" not in status:
            continue
        if not any(word in status for word in ("Queued", "Running")):
            return status
        # workers take a moment to start; a task still queued after that was stranded (iterative/dvc#10562)
        assert time.monotonic() < start + 30, f"no queue worker left, tasks unfinished:\n{status}"
    raise AssertionError(f"the queue did not finish in {TIMEOUT_S} s:\n{queue_status(project)}")


def worker_pids(project: Path) -> list[int]:
    """The queue's worker processes still alive (DVC writes one pid file per worker)."""
    alive = []
    for pid_file in (project / ".dvc/tmp/exps/celery").glob("*.pid"):
        try:
            pid = int(pid_file.read_text().strip())
            os.kill(pid, 0)
        except (ValueError, ProcessLookupError):
            continue
        alive.append(pid)
    return alive


def stop_queue(project: Path) -> None:
    """Leave no worker behind, whatever happened: kill running tasks, stop workers, wait for them."""
    subprocess.run(["dvc", "queue", "stop", "--kill"], cwd=project, env=tool_env(), capture_output=True)
    deadline = time.monotonic() + 60
    while worker_pids(project) and time.monotonic() < deadline:
        time.sleep(1)
    assert not worker_pids(project), "a queue worker is still running"


def failure_logs(project: Path, status: str) -> str:
    """`dvc queue logs` of every task that did not succeed, for the assertion message."""
    tasks = [line.split()[0] for line in status.splitlines() if line.split()[-1:] in (["Failed"], ["Killed"])]
    return "".join(run(["dvc", "queue", "logs", task], project, check=False).stdout for task in tasks)


def experiment_revs(project: Path) -> list[str]:
    """Commits of finished experiments: refs/exps/<baseline sha split 2/38>/<name> (the queue's own refs differ)."""
    listed = run(["git", "for-each-ref", "refs/exps", "--format=%(objectname) %(refname)"], project).stdout
    revs = []
    for rev, ref in (line.split() for line in listed.splitlines()):
        parts = ref.split("/")
        if len(parts) == 5 and len(parts[2]) == 2:
            revs.append(rev)
    return revs


def experiment_outputs(project: Path) -> dict[str, dict[str, bytes]]:
    """Each finished experiment's committed outputs, keyed by its `evaluate.seeds`."""
    found = {}
    for rev in experiment_revs(project):
        params = yaml.safe_load(run(["git", "show", f"{rev}:params.yaml"], project).stdout)
        show = {name: subprocess.run(["git", "show", f"{rev}:{name}"], cwd=project, capture_output=True).stdout for name in COMPARED}
        found[str(params["evaluate"]["seeds"])] = show
    return found


def test_two_queued_experiments_side_by_side_match_each_run_alone(tmp_path: Path) -> None:
    project = make_project(tmp_path / "queued", PARAMS)
    for seeds in SEEDS:
        run(["dvc", "exp", "run", "--queue", "-S", f"evaluate.seeds={seeds}"], project)
    try:
        run(["dvc", "queue", "start", "--jobs", "2"], project)
        status = wait_for_queue(project)
    finally:
        stop_queue(project)
    assert status.count("Success") == len(SEEDS), status + failure_logs(project, status)
    queued = experiment_outputs(project)
    assert sorted(queued) == sorted(str(seeds) for seeds in SEEDS)

    alone = outputs_alone(tmp_path)
    for seeds, files in queued.items():
        for name in COMPARED:
            assert files[name], f"{name} missing from the experiment with evaluate.seeds={seeds}"
            assert files[name] == alone[seeds][name], f"{name} differs from its run alone (evaluate.seeds={seeds})"
    # the two experiments did differ where they should
    assert queued[str(SEEDS[0])]["reports/evaluation.json"] != queued[str(SEEDS[1])]["reports/evaluation.json"]
    assert queued[str(SEEDS[0])]["reports/vae/metrics.json"] == queued[str(SEEDS[1])]["reports/vae/metrics.json"]
