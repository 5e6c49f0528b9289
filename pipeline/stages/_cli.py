"""The command line every stage shares: `--params` and one option per path it reads or writes.

Every path comes from the command line so that `dvc.yaml`'s `cmd`, `deps` and `outs` show the
same strings; the defaults are the ones `dvc.yaml` uses.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def stage_parser(doc: str, **paths: str) -> argparse.ArgumentParser:
    """A parser with `--params` and `--<name>` (underscores become dashes) for each path."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default: params.yaml)")
    for name, default in paths.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=Path, default=Path(default), help=f"(default: {default})")
    return parser
