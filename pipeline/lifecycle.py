"""A stage's processes live and die with the run that started them.

A run often ends in a way the stage never sees coming: the OOM killer or `kill -9` takes the stage
alone, and a cancelled CI job, a job scheduler or `timeout` sends SIGTERM to `dvc` alone. Left to
themselves, the stage's workers, reparented to init, compute on for minutes holding their memory,
and a stage whose `dvc` is gone finishes alone and writes outputs that no `dvc.lock` records. So:

* every worker process a stage starts (the learning curve's cells, DataLoader workers) calls
  `die_with_parent` first: the kernel kills it the moment its parent dies, SIGKILL included
  (`PR_SET_PDEATHSIG`; a thread that watches the parent where that is missing). A local Ray
  instance arms its own processes the same way, its task workers end with their raylet, and what
  would linger (its agents) is killed by a guard process (`guard_descendants`);
* a stage's `main` is wrapped in `stage`: SIGTERM, SIGHUP and, when dvc started the stage, the
  loss of dvc (the stage's parent, or the parent of a shell between them) raise `Stopped` in the
  main thread, as Ctrl-C raises KeyboardInterrupt, so every write-then-rename block removes its
  temporary file and nothing more is written; then the workers are killed and the stage exits
  non-zero with one line.

Standard library only: it imports nothing of the pipeline, so any module of it may import this one,
and the guard process runs this file alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import multiprocessing
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
POLL_S = 0.25  # how often a watch looks at its parent: cheap (one system call), and bounds how late a stop comes
GUARD_POLL_S = 0.5  # how often a guard notes the processes it may have to kill (a /proc scan: milliseconds)
GRACE_S = 5.0  # a stopped stage that has not exited by then (a hung clean-up or exit hook) is ended outright
SHELLS = frozenset({"sh", "dash", "bash", "zsh", "ksh", "fish"})  # what `dvc` runs a stage's cmd through
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
DVC_STAGE = "DVC_STAGE"  # set by dvc in the environment of every stage command it runs
EXIT_PARENT_GONE = 128 + signal.SIGKILL  # a worker whose parent died before it could arm the kernel's signal


class Stopped(BaseException):
    """The run this stage belongs to has ended. A BaseException, like KeyboardInterrupt, so no
    `except Exception` on the way swallows it; and not a KeyboardInterrupt, which Lightning turns
    into a silent `exit(1)` (it re-raises anything else after its teardown)."""

    def __init__(self, why: str, code: int) -> None:
        super().__init__(why)
        self.code = code


def set_parent_death_signal(signum: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send `signum` to this process when its parent dies (Linux only; strictly,
    when the parent's thread that started it ends: the pipeline starts workers from main threads).
    False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def die_with_parent(parent: int | None = None) -> None:
    """Make this worker end when its parent does, however the parent dies. The first call in
    every worker a stage starts.

    `parent`: the pid that started this worker, when the caller knows it; a parent that died
    before the worker got here (a worker still importing torch) means exit now. SIGTERM and SIGHUP
    are reset to their defaults: a forked worker inherits the stage's handlers, and a worker
    should just end when its parent ends it."""
    parent = os.getppid() if parent is None else parent
    if threading.current_thread() is threading.main_thread():
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
    if not set_parent_death_signal(signal.SIGKILL):
        _watch_once(ParentWatch(), lambda: os._exit(EXIT_PARENT_GONE))
    if os.getppid() != parent:
        os._exit(EXIT_PARENT_GONE)


class ParentWatch:
    """Whether the process that started this one is gone, seen as reparenting: a process whose
    parent dies is adopted by init (or a subreaper), so its parent pid changes, and pid reuse
    cannot fool the test. When the parent is a shell that did not `exec` the command (`cd x &&
    python -m ...`), the shell outlives a killed `dvc`: then the shell's own parent is watched too."""

    def __init__(self) -> None:
        self.links: list[tuple[int, int]] = [(os.getpid(), os.getppid())]  # (pid, the parent it had)
        pid = os.getppid()
        while _name(pid) in SHELLS:
            parent = _parent(pid)
            if parent is None or parent <= 1:
                break
            self.links.append((pid, parent))
            pid = parent

    def gone(self) -> bool:
        return any(_parent(pid) != parent for pid, parent in self.links)


def _parent(pid: int) -> int | None:
    if pid == os.getpid():
        return os.getppid()
    stat = _stat(pid)
    return None if stat is None else stat[0]


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks after boot) of a live process, from /proc."""
    try:  # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else (int(fields[1]), int(fields[19]))


def _name(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


_watched = False  # a worker process reused for many tasks (Ray) watches once


def _watch_once(watch: ParentWatch, on_gone: Callable[[], None]) -> None:
    global _watched
    if not _watched:
        _watched = True
        _start_watch(watch, on_gone, threading.Event())


def _start_watch(watch: ParentWatch, on_gone: Callable[[], None], done: threading.Event) -> threading.Thread:
    def poll() -> None:
        while not done.wait(POLL_S):
            if watch.gone():
                on_gone()
                return

    thread = threading.Thread(target=poll, name="parent-watch", daemon=True)
    thread.start()
    return thread


class _Run:
    """One guarded stage run: why it stops, and whether it already does."""

    def __init__(self, guarded: tuple[int, ...]) -> None:
        self.guarded = guarded  # the signals this run stops on
        self.why: str | None = None
        self.stopping = False


_run: _Run | None = None
_said = threading.Lock()  # held once the stop line is printed: one line per process


def _on_signal(signum: int, frame) -> None:
    run = _run
    if run is None or run.stopping:  # one Stopped per run: the clean-up it starts runs undisturbed
        return
    run.stopping = True
    why, code = run.why or f"{signal.Signals(signum).name} received", 128 + signum
    deadline = threading.Timer(GRACE_S, _end_now, args=(why, code))
    deadline.daemon = True
    deadline.start()
    raise Stopped(why, code)


@contextlib.contextmanager
def stop_when_run_ends() -> Iterator[None]:
    """Within the block, SIGTERM, SIGHUP and, under dvc, the loss of dvc raise `Stopped` in the
    main thread; the previous handlers are back afterwards (tests call stages' `main` in-process).
    Off the main thread, where Python cannot handle signals, the block runs unguarded."""
    global _run
    if threading.current_thread() is not threading.main_thread() or _run is not None:
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    # A signal ignored from the start stays ignored: `nohup` asks for SIGHUP to be.
    run = _run = _Run(tuple(signum for signum, handler in previous.items() if handler is not signal.SIG_IGN))
    for signum in run.guarded:
        signal.signal(signum, _on_signal)
    main = threading.main_thread().ident

    def parent_gone() -> None:
        run.why = "dvc, which ran this stage, is gone"
        signal.pthread_kill(main, signal.SIGTERM)  # to the main thread, so it wakes from any blocking wait

    done = threading.Event()
    if DVC_STAGE in os.environ:  # started by dvc; by hand or by a test, the stage is the whole run
        _start_watch(ParentWatch(), parent_gone, done)
    try:
        yield
    finally:
        done.set()
        for signum, handler in previous.items():
            if handler is not None:  # None: set outside Python, cannot be put back
                signal.signal(signum, handler)
        _run = None


def reclaim_signals() -> None:
    """Put the stop handlers back after a library replaced them: `ray.init` installs a SIGTERM
    handler that exits without a word and without stopping anything."""
    if _run is not None and threading.current_thread() is threading.main_thread():
        for signum in _run.guarded:
            signal.signal(signum, _on_signal)


def end_workers() -> None:
    """Kill this process's worker processes now: nobody waits for their results, and a process
    pool's exit would otherwise wait for the cells they are computing."""
    children = multiprocessing.active_children()
    for child in children:
        child.kill()
    for child in children:
        child.join(timeout=1)


def stage(main: Callable[..., T]) -> Callable[..., T]:
    """Wrap a stage's `main` (inside `errors.cli_guard`) so the stage ends when its run ends:
    one line, exit 128 + the signal (143 for SIGTERM and for a parent gone, 129 for SIGHUP)."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            with stop_when_run_ends():
                return main(*args, **kwargs)
        except BaseException as err:
            stop = _stop_in(err)
            if stop is None:
                raise
            end_workers()
            _say(str(stop))
            raise SystemExit(stop.code) from None

    return wrapper


def _stop_in(err: BaseException | None) -> Stopped | None:
    """The Stopped behind an exception: a library's C code the signal interrupted may wrap it
    (Ray's `ray.wait` raises a SystemError caused by it)."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, Stopped):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def _say(why: str) -> None:
    if _said.acquire(blocking=False):
        print(f"stopped: {why}; nothing half-written was kept, rerun to finish", file=sys.stderr, flush=True)


def _end_now(why: str, code: int) -> None:
    """The clean-up after a stop still runs after GRACE_S (an exit hook joining a thread, a
    library's shutdown): end the workers and the process without waiting any longer."""
    with contextlib.suppress(Exception):
        end_workers()
    with contextlib.suppress(Exception):
        _say(why)
    os._exit(code)


@contextlib.contextmanager
def guard_descendants() -> Iterator[None]:
    """Kill the processes started within the block if this process dies inside it, SIGKILL
    included: for children that do not die with it and cannot be armed from here. A local Ray
    instance's agents, children of its raylet, outlive a killed stage by a minute (they wait 60 s
    to tell its GCS, which died with the stage, that the raylet died).

    A small process (this file run as a script) reads a pipe from this one and notes every
    `GUARD_POLL_S` this process's descendants; when the pipe closes without a word, this process
    is dead, and it kills those still there. Leaving the block says the word."""
    read, write = os.pipe()
    before = [str(pid) for pid in _descendants(os.getpid())]  # not started within the block
    guard = subprocess.Popen(
        [sys.executable, "-I", __file__, str(os.getpid()), *before], stdin=read, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(read)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.write(write, b"released")
        os.close(write)
        with contextlib.suppress(subprocess.TimeoutExpired):
            guard.wait(timeout=5)


def _guard(guarded: int, before: set[int]) -> None:
    """The guard process of `guard_descendants`: `before`, the descendants not to kill."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the stage; the pipe says when this ends
    before = before | {os.getpid()}
    seen: dict[int, int] = {}  # pid -> start time
    while not select.select([0], [], [], GUARD_POLL_S)[0]:
        seen = {pid: start for pid, start in {**seen, **_descendants(guarded)}.items() if pid not in before and _alive(pid, start)}
    if os.read(0, 64):  # released: the guarded process ended what it started itself
        return
    for pid, start in seen.items():
        if _alive(pid, start):  # the same process, not a new one with a reused pid
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def _descendants(root: int) -> dict[int, int]:
    """pid -> start time of every live process descended from `root`."""
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in os.scandir("/proc"):
        stat = _stat(int(entry.name)) if entry.name.isdigit() else None
        if stat is not None:
            children.setdefault(stat[0], []).append((int(entry.name), stat[1]))
    found, queue = {}, [root]
    while queue:
        for pid, start in children.get(queue.pop(), []):
            found[pid] = start
            queue.append(pid)
    return found


def _alive(pid: int, start: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[1] == start


if __name__ == "__main__":
    _guard(int(sys.argv[1]), {int(pid) for pid in sys.argv[2:]})
