"""Finished learning-curve cells kept on disk, so a killed `evaluate` redoes only the rest.

A cell's result depends on the splits, the params and the code, never on when or where it ran
(each cell seeds its own fits). So a finished cell is stored under a key made of all three and
is reused by a rerun with the same ones; a change to any of them makes a new key and the old
entries are never read. The folder is removed once the stage has written its outputs: it exists
only while a run is unfinished. Results are pickled, not JSON: a reused cell must be the very
same object a fresh one is, NaN and all, or the outputs would not be byte-identical.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import pickle
import shutil
from pathlib import Path

import pipeline
from pipeline.atomic import atomic_path
from pipeline.config import Params
from pipeline.data.imageset import ImageSet

Task = tuple[str, int, int]  # (kind: "cell" | "full", size, seed)


class CellCache:
    def __init__(self, folder: Path, splits: tuple[ImageSet, ...], params: Params) -> None:
        self.folder = Path(folder) / run_key(splits, params)

    def get(self, task: Task) -> dict | None:
        path = self._path(task)
        if not path.exists():
            return None
        try:
            return pickle.loads(path.read_bytes())
        except (pickle.UnpicklingError, EOFError, ValueError):  # written by rename, so only by hand
            return None

    def put(self, task: Task, result: dict) -> None:
        with atomic_path(self._path(task)) as tmp:
            tmp.write_bytes(pickle.dumps(result, protocol=5))

    def clear(self) -> None:
        """Every run's entries, this one's and any left by runs with other params or code."""
        shutil.rmtree(self.folder.parent, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.folder.parent.parent.rmdir()  # models/.resume, unless another stage's run waits there

    def _path(self, task: Task) -> Path:
        kind, size, seed = task
        return self.folder / f"{kind}-n{size}-seed{seed}.pkl"


def run_key(splits: tuple[ImageSet, ...], params: Params) -> str:
    """What a cell's result depends on: the images and labels, the params that reach a cell (not
    where or in how many workers they run, nor the progress bar), and the source of the pipeline package."""
    digest = hashlib.sha256()
    for data in splits:
        digest.update(data.images.tobytes())
        digest.update(data.labels.tobytes())
        digest.update(json.dumps(data.class_names).encode())
    settings = params.model_dump(mode="json")
    for where in ("workers", "executor", "ray_address", "cell_cpus", "cell_gpus"):  # where cells run, not what they give
        settings["evaluate"].pop(where, None)
    settings["trainer"].pop("progress_bar", None)
    digest.update(json.dumps(settings, sort_keys=True).encode())
    digest.update(code_digest().encode())
    return digest.hexdigest()[:16]


def code_digest() -> str:
    root = Path(pipeline.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
