"""Write-then-rename helpers, so an interrupted stage never leaves a truncated output behind.

A stage killed outright (SIGKILL, OOM killer, a lost node) cannot clean up its temporary file;
the next write of the same output removes it. A full disk leaves the previous version in place
and ends the stage with one line naming the output.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError, no_space


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto `final` only if the block succeeds.

    Works for files and directories. The temporary name lives next to the target so the rename
    stays on one filesystem (and is therefore atomic for files).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(final)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    _remove(tmp)
    try:
        yield tmp
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except OSError as err:
        if no_space(err):
            raise PipelineError(f"{final}: no space left on the disk to write it; the previous version is kept") from None
        raise
    finally:
        _remove(tmp)


def _remove_stale(final: Path) -> None:
    """Temporary siblings of `final` left by processes that were killed before they could remove them."""
    for stale in final.parent.glob(f".{final.name}.tmp-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            _remove(stale)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Deterministic JSON: sorted keys, fixed indent, trailing newline; NaN becomes null."""
    write_text(path, json.dumps(to_plain(data), indent=2, sort_keys=True, allow_nan=False) + "\n")


def to_plain(value: Any) -> Any:
    """numpy scalars and arrays to Python, non-finite floats to None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalar or array
        return to_plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
