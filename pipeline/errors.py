"""One kind of user-facing error, and the guard that turns it into one clear line.

Stages raise `PipelineError` for anything a user can fix (a missing file, a bad param, a corrupt
image). `cli_guard` prints its message on one line to stderr and exits non-zero, so `dvc repro`
shows the cause instead of a traceback. Genuine bugs still raise normally.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

EXIT_USER_ERROR = 2


class PipelineError(Exception):
    """An error caused by the user's input or params; the message names the culprit."""


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
        except KeyboardInterrupt:
            print("interrupted: nothing half-written was kept; rerun to finish", file=sys.stderr)
            raise SystemExit(130) from None

    return wrapper
