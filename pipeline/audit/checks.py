"""What an audit needs from its inputs, each failure one line naming the file at fault."""

from __future__ import annotations

from pathlib import Path

from pipeline.data.imageset import ImageSet
from pipeline.errors import PipelineError

MIN_PER_CLASS = 2  # with one image a class, the VAE has memorised it: every other label then loses


def check_model_matches(class_names: tuple[str, ...], image_shape: tuple[int, ...], model_path: Path, data: ImageSet, data_path: Path) -> None:
    """The model must have been trained on these classes and this image shape."""
    if tuple(class_names) != data.class_names:
        raise PipelineError(
            f"{model_path}: trained on classes {list(class_names)}, but {data_path} has {list(data.class_names)}; rerun train_vae"
        )
    if tuple(image_shape) != data.image_shape:
        raise PipelineError(
            f"{model_path}: trained on images of shape {tuple(image_shape)}, but {data_path} has {data.image_shape}; rerun train_vae"
        )


def check_enough_per_class(data: ImageSet, path: Path) -> None:
    """At least MIN_PER_CLASS images in every class: the robust scales need a spread to measure."""
    counts = data.class_counts()
    low = [(name, int(n)) for name, n in zip(data.class_names, counts) if n < MIN_PER_CLASS]
    if low:
        name, n = low[0]
        raise PipelineError(
            f"{path}: class {name!r} has {n} image(s); the audit needs at least {MIN_PER_CLASS} per class "
            f"(raise dataset.train_per_class)"
        )
