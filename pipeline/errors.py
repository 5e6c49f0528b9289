"""One kind of user-facing error, and the guard that turns it into one clear line.

Stages raise `PipelineError` for anything a user can fix (a missing file, a bad param, a corrupt
image). `cli_guard` prints its message on one line to stderr and exits non-zero, so `dvc repro`
shows the cause instead of a traceback. Genuine bugs still raise normally.
"""

from __future__ import annotations

import errno
import functools
import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

EXIT_USER_ERROR = 2


class PipelineError(Exception):
    """An error caused by the user's input or params; the message names the culprit."""


NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # a full disk, a quota, a file-size limit


def no_space(err: BaseException) -> bool:
    """Whether a failed write ran out of room (pyarrow's errors carry it only in the message)."""
    text = str(err)
    return isinstance(err, OSError) and (err.errno in NO_SPACE or "No space left on device" in text or "File too large" in text)


def cli_guard(main: Callable[..., T]) -> Callable[..., T]:
    """Wrap a stage's `main` so user errors end in one line and exit code 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except PipelineError as err:
            message = " ".join(str(err).split())
            print(f"error: {message}", file=sys.stderr)
            raise SystemExit(EXIT_USER_ERROR) from None
        except OSError as err:
            if not no_space(err):
                raise
            where = f"{err.filename}: " if err.filename else ""
            print(f"error: {where}no space left on the disk; outputs written so far are kept as they were", file=sys.stderr)
            raise SystemExit(EXIT_USER_ERROR) from None
        except KeyboardInterrupt:
            print("interrupted: nothing half-written was kept; rerun to finish", file=sys.stderr)
            raise SystemExit(130) from None

    return wrapper
