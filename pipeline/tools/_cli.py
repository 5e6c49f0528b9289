"""The command line the tools share: `python -m pipeline.tools.<name>` with examples under --help."""

from __future__ import annotations

import argparse


def tool_parser(module: str, doc: str, epilog: str) -> argparse.ArgumentParser:
    """A parser whose usage names the module to run and whose help keeps the examples' layout."""
    return argparse.ArgumentParser(
        prog=f"python -m {module}",
        description=doc.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=epilog,
    )


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1, else the usual one-line usage error."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)
