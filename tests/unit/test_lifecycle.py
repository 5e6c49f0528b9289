"""A stage's processes end with its run: workers with their parent, a stage with its signal or
its parent. Each case runs in a small process that loads `pipeline/lifecycle.py` by its path
(standard library only), not the `pipeline` package, whose import loads torch: seconds each."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from pipeline import lifecycle

ROOT = Path(__file__).resolve().parents[2]
LOAD = f"""
import importlib.util, os, sys, time
spec = importlib.util.spec_from_file_location("lifecycle", {str(ROOT / "pipeline" / "lifecycle.py")!r})
lifecycle = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lifecycle)
"""
# A stage that writes a temporary file, removes it on the way out, and would run for a minute.
STAGE = LOAD + """
@lifecycle.stage
def main():
    tmp = sys.argv[1] + ".tmp"
    open(tmp, "w").close()
    try:
        print(os.getpid(), flush=True)
        time.sleep(60)
        open(sys.argv[1], "w").write("late")
    finally:
        os.remove(tmp)

main()
"""
WORKER = LOAD + """
lifecycle.die_with_parent(int(sys.argv[1]))
print(os.getpid(), flush=True)
time.sleep(60)
"""
PARENT = """
import os, subprocess, sys, time
child = subprocess.Popen([arg.replace("{parent}", str(os.getpid())) for arg in sys.argv[1:]], stdout=subprocess.PIPE, text=True)
print(child.stdout.readline().strip(), flush=True)
time.sleep(60)
"""


def script(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def gone(pid: int) -> bool:
    """Not running: no such process, or a zombie (init reaps orphans whenever it likes)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def wait_gone(pid: int, limit_s: float = 5.0) -> float:
    start = time.monotonic()
    while not gone(pid):
        assert time.monotonic() - start < limit_s, f"process {pid} still runs after {limit_s} s"
        time.sleep(0.05)
    return time.monotonic() - start


def start_parent(tmp_path: Path, *child: str, env: dict | None = None) -> tuple[subprocess.Popen, int]:
    """A parent process that starts `child` and sleeps; (the parent, the child's pid)."""
    parent = subprocess.Popen([sys.executable, script(tmp_path, "parent.py", PARENT), *child], stdout=subprocess.PIPE, text=True, env=env)
    return parent, int(parent.stdout.readline())


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the pipeline's process handling is for Linux")


def test_a_worker_dies_with_a_sigkilled_parent(tmp_path: Path) -> None:
    parent, worker = start_parent(tmp_path, sys.executable, str(script(tmp_path, "worker.py", WORKER)), "{parent}")
    assert not gone(worker)
    parent.kill()
    parent.wait()
    assert wait_gone(worker) < 2


def test_a_worker_whose_parent_already_died_exits_at_once() -> None:
    done = subprocess.run([sys.executable, "-c", LOAD + "lifecycle.die_with_parent(1)\nprint('ran on')"], capture_output=True, text=True, timeout=30)
    assert done.returncode == lifecycle.EXIT_PARENT_GONE and "ran on" not in done.stdout


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_stops_a_stage_with_one_line_and_no_late_write(tmp_path: Path, signum: int) -> None:
    out = tmp_path / "out.txt"
    stage = subprocess.Popen([sys.executable, script(tmp_path, "stage.py", STAGE), out], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    int(stage.stdout.readline())  # it is inside main, its temporary file written
    stage.send_signal(signum)
    _, err = stage.communicate(timeout=10)
    assert stage.returncode == 128 + signum
    assert err.splitlines() == [f"stopped: {signal.Signals(signum).name} received; nothing half-written was kept, rerun to finish"]
    assert list(tmp_path.glob("out.txt*")) == []


def test_a_stage_under_nohup_ignores_sighup_and_still_stops_on_sigterm(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    nohup = lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN)  # noqa: E731 - what nohup does before exec
    stage = subprocess.Popen([sys.executable, script(tmp_path, "stage.py", STAGE), out], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, preexec_fn=nohup)
    int(stage.stdout.readline())
    stage.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    assert stage.poll() is None
    stage.send_signal(signal.SIGTERM)
    stage.communicate(timeout=10)
    assert stage.returncode == 128 + signal.SIGTERM


@pytest.mark.parametrize("through", ["exec", "shell"])
def test_a_stage_stops_when_the_process_that_started_it_dies(tmp_path: Path, through: str) -> None:
    """dvc killed alone: the stage, adopted by init, stops instead of finishing; also when dvc ran
    it through a shell that stayed (`cd . && python ...`)."""
    out, err = tmp_path / "out.txt", tmp_path / "stage.err"
    command = f"{sys.executable} {script(tmp_path, 'stage.py', STAGE)} {out} 2> {err}"
    shell = ["bash", "-c", command if through == "exec" else f"cd . && {command}; true"]
    parent, stage = start_parent(tmp_path, *shell, env=dict(os.environ, DVC_STAGE="evaluate"))  # as dvc runs it
    time.sleep(2 * lifecycle.POLL_S)
    assert not gone(stage)
    parent.send_signal(signal.SIGTERM)  # no handler: it dies, and nothing tells its child
    parent.wait()
    assert wait_gone(stage) < 2
    assert err.read_text().splitlines() == [
        "stopped: dvc, which ran this stage, is gone; nothing half-written was kept, rerun to finish"
    ]
    assert list(tmp_path.glob("out.txt*")) == []


GUARDED = LOAD + """
import subprocess
with lifecycle.guard_descendants():
    # a child and a grandchild that nothing arms, as a Ray instance's agents under its raylet
    child = subprocess.Popen(["sh", "-c", "sleep 60 & echo $!; wait"], stdout=subprocess.PIPE, text=True)
    print(child.pid, child.stdout.readline().strip(), flush=True)
    time.sleep(float(sys.argv[1]))
time.sleep(60)
"""


@pytest.mark.parametrize("released", [False, True])
def test_a_guard_kills_what_a_killed_process_started_and_leaves_it_alone_once_released(tmp_path: Path, released: bool) -> None:
    guarded = subprocess.Popen([sys.executable, script(tmp_path, "guarded.py", GUARDED), "0" if released else "60"], stdout=subprocess.PIPE, text=True)
    started = [int(pid) for pid in guarded.stdout.readline().split()]
    time.sleep(3 * lifecycle.GUARD_POLL_S)  # the guard has noted them
    guarded.kill()
    guarded.wait()
    if released:
        time.sleep(3 * lifecycle.GUARD_POLL_S)
        assert not any(gone(pid) for pid in started)
        for pid in started:
            os.kill(pid, signal.SIGKILL)
    else:
        assert max(wait_gone(pid) for pid in started) < 2


def test_handlers_are_put_back_after_the_stage_and_after_ray_replaces_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DVC_STAGE", raising=False)
    before = signal.getsignal(signal.SIGTERM)
    with lifecycle.stop_when_run_ends():
        assert "parent-watch" not in [t.name for t in threading.enumerate()]  # not run by dvc: a test, a user by hand
        assert signal.getsignal(signal.SIGTERM) is signal.getsignal(signal.SIGHUP) is lifecycle._on_signal
        signal.signal(signal.SIGTERM, lambda signum, frame: None)  # what ray.init does
        lifecycle.reclaim_signals()
        assert signal.getsignal(signal.SIGTERM) is lifecycle._on_signal
    assert signal.getsignal(signal.SIGTERM) is before
    lifecycle.reclaim_signals()  # outside a stage: leaves the process alone
    assert signal.getsignal(signal.SIGTERM) is before


def test_the_watch_reads_parents_and_sees_a_shell_through() -> None:
    watch = lifecycle.ParentWatch()
    assert watch.links[0] == (os.getpid(), os.getppid()) and not watch.gone()
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        assert lifecycle._parent(sleeper.pid) == os.getpid()  # read from /proc
    finally:
        sleeper.kill()
        sleeper.wait()
    assert lifecycle._parent(sleeper.pid) is None
    code = LOAD + "print(len(lifecycle.ParentWatch().links))"
    through_shell = subprocess.run(
        ["bash", "-c", f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}; true"],
        capture_output=True, text=True, timeout=30,
    )
    assert through_shell.stdout.split() == ["2"]  # the stage and the shell, whose parent is this process


def test_a_stop_a_library_wrapped_is_still_a_stop() -> None:
    """Ray's `ray.wait`, interrupted by the signal, raises a SystemError caused by the Stopped."""
    try:
        try:
            raise lifecycle.Stopped("SIGTERM received", 143)
        except lifecycle.Stopped as stop:
            raise SystemError("returned a result with an exception set") from stop
    except SystemError as err:
        assert lifecycle._stop_in(err).code == 143
    assert lifecycle._stop_in(ValueError("a bug")) is None
