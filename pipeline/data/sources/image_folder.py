"""`dataset.path` holds one sub-folder per class; the folder name is the class name.

Images are found recursively inside each class folder, in sorted path order, by suffix
(.png .jpg .jpeg .bmp .gif .tif .tiff .webp, any case); hidden files and folders (".*") and other
files are ignored, as are files directly in `dataset.path`. Grey images load as 1 channel; one
colour image makes the whole set RGB unless `dataset.channels` says otherwise. Mixed sizes need
`dataset.image_size`. Unreadable files follow `dataset.on_error` (see `_common`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.config import DatasetConfig
from pipeline.data.imageset import ImageSet
from pipeline.data.sources._common import ImageDecoder, require_path, stack_images
from pipeline.errors import PipelineError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def load_image_folder(cfg: DatasetConfig) -> ImageSet:
    root = require_path(cfg.path, "dataset.path", folder=True)
    class_dirs = [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    if len(class_dirs) < 2:
        found = ", ".join(repr(p.name) for p in class_dirs) or "none"
        raise PipelineError(
            f"dataset.path: {root} has {len(class_dirs)} class folder(s) ({found}); "
            "put each class's images in its own sub-folder, at least 2"
        )
    decoder = ImageDecoder(cfg)
    images, labels, names = [], [], []
    for label, folder in enumerate(class_dirs):
        files = image_files(folder)
        if not files:
            raise PipelineError(
                f"{folder}: empty class folder (no {', '.join(IMAGE_SUFFIXES)} files)"
            )
        before = len(images)
        for file in files:
            image = decoder(file, str(file))
            if image is not None:
                images.append(image)
                names.append(str(file))
        if len(images) == before:
            raise PipelineError(f"{folder}: no readable image in this class folder")
        labels += [label] * (len(images) - before)
    decoder.report()
    class_names = tuple(folder.name for folder in class_dirs)
    return ImageSet(stack_images(images, names, cfg), np.array(labels, dtype=np.int64), class_names)


def image_files(folder: Path) -> list[Path]:
    """Image files under `folder`, sorted, skipping hidden files and folders."""
    return sorted(
        path
        for path in folder.rglob("*")
        if path.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
        and path.is_file()
    )
