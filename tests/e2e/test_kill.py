"""kill -9 at any moment, then `dvc repro`: the same bytes as a run never interrupted.

Each stage that computes (train_vae, generate, audit, evaluate, report) is killed with SIGKILL to
its whole process group (workers included). A round kills every stage once, at the same share of
its duration, the kills following one another in one fresh project as a user's bad day would:
each `dvc repro` finishes what the last one left and is killed in the next stage. A final
`dvc repro` must then leave every output byte-identical to an uninterrupted run in a second copy,
`dvc status` clean, no temporary files, no resume folders, and no lock to remove by hand.

`make test-soak` runs one round (kills at 60 % of each stage); `KILL_ROUNDS=3` adds the rounds at 30 %
and 90 % (docs/reproducibility.md quotes that run).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import TINY, deep_update, make_project, run, tool_env

pytestmark = [pytest.mark.slow, pytest.mark.soak]

STAGES = ["train_vae", "generate", "audit", "evaluate", "report"]
MOMENTS = (0.6, 0.3, 0.9)[: int(os.environ.get("KILL_ROUNDS", "1"))]  # of a stage's uninterrupted duration
# A little more work than the e2e DAG, so every stage has a middle to be killed in.
PARAMS = deep_update(deep_update({}, TINY), {"vae": {"epochs": 12, "val_every_n_epochs": 2}, "evaluate": {"seeds": [0, 1, 2]}})


class Repro:
    """`dvc repro` in its own process group, noting when each stage starts."""

    def __init__(self, project: Path) -> None:
        self.proc = subprocess.Popen(["dvc", "repro"], cwd=project, env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)
        self.started: dict[str, float] = {}
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)
            found = re.search(r"Running stage '([a-z_]+)'", line)
            if found:
                self.started[found.group(1)] = time.monotonic()

    def running(self) -> str | None:
        return max(self.started, key=self.started.get) if self.started else None

    def wait(self) -> int:
        code = self.proc.wait(timeout=600)
        self.reader.join(timeout=10)
        return code

    def kill_in(self, stage: str, delay: float) -> str | None:
        """SIGKILL the group `delay` s after `stage` starts: the stage it hit, None if none ran."""
        while stage not in self.started and self.proc.poll() is None:
            time.sleep(0.02)
        if self.proc.poll() is None:
            time.sleep(max(0.0, self.started[stage] + delay - time.monotonic()))
        hit = self.running() if self.proc.poll() is None else None
        if hit:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.wait()
        return hit


def outputs(project: Path) -> dict[str, bytes]:
    found = {}
    for top in ("data", "models", "reports"):
        for path in sorted((project / top).rglob("*")):
            if path.is_file() and "raw" not in path.relative_to(project).parts[:2]:
                found[path.relative_to(project).as_posix()] = path.read_bytes()
    found["dvc.lock"] = (project / "dvc.lock").read_bytes()
    return found


def test_every_stage_killed_then_repro_gives_the_same_bytes(tmp_path: Path) -> None:
    whole = make_project(tmp_path / "whole", PARAMS)
    baseline = Repro(whole)
    assert baseline.wait() == 0, "".join(baseline.lines)
    order = sorted(baseline.started, key=baseline.started.get)
    ends = [baseline.started[s] for s in order[1:]] + [time.monotonic()]
    duration = dict(zip(order, (end - baseline.started[s] for s, end in zip(order, ends))))
    expected = outputs(whole)

    for moment in MOMENTS:
        victim = make_project(tmp_path / f"victim-{moment}", PARAMS)
        hits = [(stage, Repro(victim).kill_in(stage, moment * duration[stage])) for stage in STAGES]
        final = Repro(victim)
        assert final.wait() == 0, "".join(final.lines)  # no lock to remove by hand
        assert sum(target == hit for target, hit in hits) >= len(STAGES) - 1, f"kills at {moment} missed their stage: {hits}"
        assert outputs(victim) == expected, f"kills at {moment}: {hits}"
        assert "up to date" in run(["dvc", "status"], victim).stdout.lower()
        strays = [p for top in ("data", "models", "reports") for p in (victim / top).rglob("*") if ".tmp-" in p.name or ".resume" in p.parts]
        assert strays == [], f"kills at {moment}"
