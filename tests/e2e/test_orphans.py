"""Part of a run killed, not all of it: no process of the run is left, and `dvc repro` gives the same bytes.

test_kill.py kills a stage's whole process group. Real kills are narrower:

* the stage process alone is SIGKILLed (what the OOM killer and `kill -9 <pid>` do): its workers
  (cell processes and their DataLoader workers, a local Ray instance and its tasks, train_vae's
  DataLoader worker) must be gone within 10 s;
* `dvc` alone gets SIGTERM (a cancelled CI job, a scheduler, `timeout`): its stage must stop within
  10 s with one line, leave no process, and write no output after the kill.

Each case forces one stage in a copy of a finished project (`dvc repro -s -f`), kills it half-way
once its workers run, then runs `dvc repro`: every file under `data/`, `models/` and `reports/`
and `dvc.lock` must be the bytes of the uninterrupted run, `dvc status` clean, no temporary files,
no resume folders. A process of the run is one in dvc's session (the test starts dvc in its own)
or a descendant of dvc just before the kill.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from pipeline.lifecycle import SHELLS
from tests.e2e.conftest import TINY, deep_update, make_project, run, tool_env
from tests.e2e.test_kill import outputs

pytestmark = [pytest.mark.slow, pytest.mark.soak]

LIMIT_S = 10.0  # nothing of a killed run may be left after this long
MOMENT = 0.5  # of the stage's uninterrupted duration
# Every kind of worker: two cell processes, a DataLoader worker in every VAE fit (train_vae's and the cells').
PARAMS = deep_update(
    deep_update({}, TINY),
    {"vae": {"epochs": 12, "val_every_n_epochs": 2}, "evaluate": {"seeds": [0, 1, 2], "workers": 2}, "trainer": {"num_workers": 1}},
)
AFTER = "nothing half-written was kept, rerun to finish"
CASES = {"train_vae": ("train_vae", "processes"), "evaluate": ("evaluate", "processes"), "evaluate-ray": ("evaluate", "ray")}


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    session: int
    start: int  # clock ticks after boot: with the pid, names a process even once its pid is reused
    cmdline: str


def table() -> dict[int, Proc]:
    """Every live process (a zombie holds no memory and runs nothing; init reaps it when it likes)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fields[0] != "Z":
            found[int(entry.name)] = Proc(int(entry.name), int(fields[1]), int(fields[3]), int(fields[19]), cmdline)
    return found


def of_run(root: int) -> set[Proc]:
    """`root`'s session and its descendants (in case one left the session)."""
    procs = table()
    mine = {p for p in procs.values() if p.session == root or p.pid == root}
    queue = [root]
    while queue:
        parent = queue.pop()
        children = [p for p in procs.values() if p.ppid == parent]
        mine.update(children)
        queue.extend(p.pid for p in children)
    return mine


def left(snapshot: set[Proc], root: int) -> set[Proc]:
    procs = table()
    still = {p for p in snapshot if p.pid in procs and procs[p.pid].start == p.start}  # Ray retitles its workers
    return still | {p for p in procs.values() if p.session == root}


def wait_until_none_left(snapshot: set[Proc], root: int) -> float:
    start = time.monotonic()
    while remaining := left(snapshot, root):
        took = time.monotonic() - start
        assert took < LIMIT_S, f"left {took:.0f} s after the kill: " + "; ".join(f"{p.pid} {p.cmdline[:100]}" for p in remaining)
        time.sleep(0.1)
    return time.monotonic() - start


class Run:
    """`dvc repro <args>` in its own session, noting when each stage starts."""

    def __init__(self, project: Path, *args: str) -> None:
        self.proc = subprocess.Popen(["dvc", "repro", *args], cwd=project, env=tool_env(), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.started: dict[str, float] = {}
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:  # until every process holding the pipe (dvc, the stage) is gone
            self.lines.append(line)
            found = re.search(r"Running stage '([a-z_]+)'", line)
            if found:
                self.started[found.group(1)] = time.monotonic()

    def wait(self) -> int:
        code = self.proc.wait(timeout=600)
        self.reader.join(timeout=LIMIT_S)
        return code

    def log(self) -> str:
        return "".join(self.lines)


@dataclass
class Baseline:
    project: Path
    outputs: dict[str, bytes]
    duration: dict[str, float]  # s, of each stage that ran


def uninterrupted(project: Path) -> Baseline:
    repro = Run(project)
    assert repro.wait() == 0, repro.log()
    order = sorted(repro.started, key=repro.started.get)
    ends = [repro.started[s] for s in order[1:]] + [time.monotonic()]
    return Baseline(project, outputs(project), {s: end - repro.started[s] for s, end in zip(order, ends)})


def copy_project(source: Path, dest: Path, **evaluate: object) -> Path:
    shutil.copytree(source, dest, symlinks=True, ignore=shutil.ignore_patterns("tmp"))  # not .dvc/tmp: locks, state
    # Without DVC's cache, as a project's first run: the repro after a kill must rerun the stage
    # (resuming it), not restore its outputs from the cache (the object cache alone is enough for
    # that: dvc.lock still names them), which would leave the killed run's resume folder behind.
    shutil.rmtree(dest / ".dvc" / "cache", ignore_errors=True)
    if evaluate:
        params = yaml.safe_load((dest / "params.yaml").read_text())
        params["evaluate"].update(evaluate)
        (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return dest


@pytest.fixture(scope="module")
def baselines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Baseline]:
    """The uninterrupted run under each executor (under Ray only evaluate and report rerun)."""
    root = tmp_path_factory.mktemp("orphans")
    processes = uninterrupted(make_project(root / "processes", PARAMS))
    found = {"processes": processes}
    if importlib.util.find_spec("ray") is None:
        return found
    found["ray"] = uninterrupted(copy_project(processes.project, root / "ray", executor="ray"))
    return found


def stage_process(stage: str, procs: set[Proc]) -> Proc | None:
    """The stage itself: its command line names it and its parent's does not (a DataLoader worker
    is a fork of it, with the same command line); not the shell dvc runs it through, if that stays."""
    named = {p.pid: p for p in procs if f"pipeline.stages.{stage} " in p.cmdline and Path(p.cmdline.split(" ")[0]).name not in SHELLS}
    tops = [p for p in named.values() if p.ppid not in named]
    return tops[0] if len(tops) == 1 else None


def workers_up(case: str, top: Proc, procs: set[Proc]) -> bool:
    if case == "train_vae":
        return any(p.ppid == top.pid and p.cmdline == top.cmdline for p in procs)  # the DataLoader worker
    if case == "evaluate-ray":
        return any(p.cmdline.startswith("ray::_ray_task") for p in procs)
    return sum("multiprocessing.spawn" in p.cmdline for p in procs) >= 2


def start_and_wait(project: Path, case: str, baseline: Baseline) -> tuple[Run, Proc, set[Proc]]:
    """Force the case's stage and wait until it is half-way and its workers run: (the run, the
    stage's process, every process of the run now)."""
    stage = CASES[case][0]
    repro = Run(project, "-s", "-f", stage)
    while stage not in repro.started:
        assert repro.proc.poll() is None, repro.log()
        time.sleep(0.02)
    time.sleep(MOMENT * baseline.duration[stage])
    while True:
        assert repro.proc.poll() is None, f"{stage} ended before the kill:\n{repro.log()}"
        procs = of_run(repro.proc.pid)
        top = stage_process(stage, procs)
        if top is not None and workers_up(case, top, procs):
            return repro, top, procs
        time.sleep(0.05)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_stage_killed_alone_leaves_no_process_and_repro_gives_the_same_bytes(case: str, baselines: dict, tmp_path: Path) -> None:
    baseline = needed(baselines, case)
    victim = copy_project(baseline.project, tmp_path / "victim")
    repro, top, procs = start_and_wait(victim, case, baseline)
    os.kill(top.pid, signal.SIGKILL)  # the stage alone, as the OOM killer picks one process
    took = wait_until_none_left(procs, repro.proc.pid)
    assert repro.wait() != 0
    print(f"{case}: {len(procs)} processes of the run, none left {took:.1f} s after SIGKILL to the stage")
    rerun_gives_the_same_bytes(victim, baseline)


@pytest.mark.parametrize("case", sorted(CASES))
def test_dvc_terminated_alone_stops_its_stage_which_writes_nothing_more(case: str, baselines: dict, tmp_path: Path) -> None:
    baseline = needed(baselines, case)
    victim = copy_project(baseline.project, tmp_path / "victim")
    repro, top, procs = start_and_wait(victim, case, baseline)
    killed_at = time.time()
    os.kill(repro.proc.pid, signal.SIGTERM)  # dvc alone: it has no handler and dies, its stage is not told
    took = wait_until_none_left(procs, repro.proc.pid)
    repro.wait()
    said = [line for line in repro.lines if line.startswith("stopped:")]
    assert said == [f"stopped: dvc, which ran this stage, is gone; {AFTER}\n"], repro.log()
    assert [p for p in stage_outputs(victim, CASES[case][0]) if p.stat().st_mtime >= killed_at] == []
    assert strays(victim, ".tmp-") == []  # the stop removed the temporary file of any write under way
    print(f"{case}: {len(procs)} processes of the run, none left {took:.1f} s after SIGTERM to dvc")
    rerun_gives_the_same_bytes(victim, baseline)


def needed(baselines: dict[str, Baseline], case: str) -> Baseline:
    executor = CASES[case][1]
    if executor not in baselines:
        pytest.skip("the Ray extra is not installed")
    return baselines[executor]


def stage_outputs(project: Path, stage: str) -> list[Path]:
    """The files `dvc.yaml` declares as the stage's outputs (outs, metrics, plots), where they exist."""
    spec = yaml.safe_load((project / "dvc.yaml").read_text())["stages"][stage]
    found = []
    for out in (out for key in ("outs", "metrics", "plots") for out in spec.get(key, [])):
        path = project / (next(iter(out)) if isinstance(out, dict) else out)
        found += [f for f in path.rglob("*") if f.is_file()] if path.is_dir() else [path] if path.exists() else []
    return found


def strays(project: Path, marker: str) -> list[Path]:
    return [p for top in ("data", "models", "reports") for p in (project / top).rglob("*") if marker in p.name or marker in p.parts]


def rerun_gives_the_same_bytes(victim: Path, baseline: Baseline) -> None:
    final = Run(victim)
    assert final.wait() == 0, final.log()  # no lock to remove by hand
    assert outputs(victim) == baseline.outputs
    assert "up to date" in run(["dvc", "status"], victim).stdout.lower()
    assert strays(victim, ".tmp-") == [] and strays(victim, ".resume") == []
