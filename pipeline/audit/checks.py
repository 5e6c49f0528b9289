"""What an audit needs from its inputs, each failure one line naming the file at fault."""

from __future__ import annotations

from pathlib import Path

from pipeline.data.imageset import ImageSet
from pipeline.errors import PipelineError

MIN_PER_CLASS = 2  # every fold's training images must hold each class, and the robust scales need a spread


def check_enough_per_class(data: ImageSet, path: Path, folds: int) -> None:
    """At least MIN_PER_CLASS audited images in every class (folds deal each class round-robin, so
    two suffice for every fold's VAE to have seen the class)."""
    counts = data.class_counts()
    low = [(name, int(n)) for name, n in zip(data.class_names, counts) if n < MIN_PER_CLASS]
    if low:
        name, n = low[0]
        raise PipelineError(
            f"{path}: class {name!r} has {n} image(s) among the audited ones; the audit needs at least {MIN_PER_CLASS} per class "
            f"for its {folds} folds (raise dataset.train_per_class)"
        )
    if len(data) < folds:
        raise PipelineError(f"audit.folds: {folds} folds for {len(data)} images; lower it")


def check_same_kind(first: ImageSet, first_path: Path, other: ImageSet, other_path: Path) -> None:
    """Splits audited together must share classes and image shape (they are one set of images)."""
    if other.class_names != first.class_names:
        raise PipelineError(f"{other_path}: classes {list(other.class_names)}, but {first_path} has {list(first.class_names)}; rerun preprocess")
    if other.image_shape != first.image_shape:
        raise PipelineError(f"{other_path}: images of shape {other.image_shape}, but {first_path} has {first.image_shape}; rerun preprocess")
