"""Wall time and peak memory of a command or a function, each in a fresh process.

Peak RSS is a high-water mark that never goes down, so every measurement gets its own process:
one measurement cannot inflate the next.
"""

from __future__ import annotations

import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from pipeline.errors import PipelineError

ROOT = Path(__file__).resolve().parents[2]  # the project: where commands and children run
MIB = 2**20


def rss_mib() -> float:
    """This process's resident memory now in MiB (without /proc: its peak so far)."""
    status = Path("/proc/self/status")
    for line in status.read_text().splitlines() if status.exists() else []:
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return _rusage_mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _rusage_mib(ru_maxrss: int) -> float:
    return ru_maxrss / MIB if sys.platform == "darwin" else ru_maxrss / 1024  # bytes there, KiB here


# The child imports the module that defines `fn` (by its own name, not by this package's layout)
# and calls `fn` by name: arguments and result travel as JSON, so only plain values cross.
CHILD = """import importlib, json, pathlib, sys
fn = getattr(importlib.import_module(sys.argv[1]), sys.argv[2])
pathlib.Path(sys.argv[4]).write_text(json.dumps(fn(**json.loads(sys.argv[3]))))
"""


def in_child(fn: Callable[..., dict], **kwargs) -> dict:
    """`fn(**kwargs)` in a fresh interpreter (JSON in, JSON out), plus that child's peak RSS."""
    if fn.__module__ == "__main__":  # a child's __main__ is `-c`, not the module that ran us
        raise ValueError(f"in_child: {fn.__name__} must live in an importable module, not __main__")
    with tempfile.TemporaryDirectory(prefix="bench-child-") as tmp:
        result = Path(tmp) / "result.json"
        argv = ["python", "-c", CHILD, fn.__module__, fn.__name__, json.dumps(kwargs), str(result)]
        measured = run_command(argv, ROOT, Path(tmp) / "log")
        return {**json.loads(result.read_text()), "peak_rss_mib": measured["peak_rss_mib"]}


# Launching a command straight from this process would charge our own RSS to it: Linux carries
# the parent's high-water mark over at fork+exec into the child's ru_maxrss. A bare interpreter
# launches it instead; its ~10 MiB is far below any command we measure.
REAPER = """import json, os, subprocess, sys, time
start = time.perf_counter()
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
code = os.waitstatus_to_exitcode(status)
with open(sys.argv[1], "w") as out:
    json.dump({"wall_s": time.perf_counter() - start, "ru_maxrss": usage.ru_maxrss}, out)
sys.exit(code)
"""


def run_command(argv: list[str], cwd: Path, log: Path) -> dict:
    """Run a command; its wall time and peak RSS (its own and its children's, no one else's)."""
    env = dict(os.environ, DVC_NO_ANALYTICS="1", NO_ALBUMENTATIONS_UPDATE="1", PYTHONPATH=str(cwd))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    if argv[0] in ("python", "python3"):
        argv = [sys.executable, *argv[1:]]
    usage_file = log.with_suffix(".usage.json")
    with log.open("wb") as out:
        reaper = [sys.executable, "-S", "-c", REAPER, str(usage_file), *argv]
        done = subprocess.run(reaper, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise PipelineError(f"bench: `{shlex.join(argv)}` failed with exit code {done.returncode}:\n{tail}")
    usage = json.loads(usage_file.read_text())
    return {"wall_s": usage["wall_s"], "peak_rss_mib": _rusage_mib(usage["ru_maxrss"])}
