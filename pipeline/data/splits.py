"""Stratified splits and per-class subsets, with errors that name the class at fault."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from pipeline.errors import PipelineError


def split_test_val_pool(
    labels: np.ndarray, test_fraction: float, val_fraction: float, seed: int, class_names: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of (test, val, pool): stratified, fractions of the whole dataset."""
    counts = np.bincount(labels, minlength=len(class_names))
    # Each of test, val and pool needs at least one image of every class.
    for cls, count in enumerate(counts):
        if count < 3:
            raise PipelineError(
                f"dataset: class {class_names[cls]!r} has {count} image(s); "
                "the test/val/train split needs at least 3 per class"
            )
    index = np.arange(len(labels))
    try:
        rest, test = train_test_split(
            index, test_size=test_fraction, stratify=labels, random_state=seed
        )
        val_share = val_fraction / (1.0 - test_fraction)
        pool, val = train_test_split(
            rest, test_size=val_share, stratify=labels[rest], random_state=seed + 1
        )
    except ValueError as err:
        raise PipelineError(
            f"dataset.test_fraction/dataset.val_fraction: cannot split {len(labels)} images "
            f"into {len(class_names)} stratified classes ({err})"
        ) from None
    return np.sort(test), np.sort(val), np.sort(pool)


def per_class_subset(
    labels: np.ndarray, per_class: int | None, seed: int | list[int], class_names: tuple[str, ...], what: str
) -> np.ndarray:
    """Indices of `per_class` images of each class, drawn with `seed`.

    Nested by construction: for one seed, the 5-per-class subset is inside the 10-per-class one,
    so a learning curve adds images rather than swapping them.
    """
    if per_class is None:
        return np.arange(len(labels))
    return _draw_per_class(labels, [per_class] * len(class_names), per_class, seed, class_names, what)


def _draw_per_class(
    labels: np.ndarray, counts: list[int], required: int, seed: int, class_names: tuple[str, ...], what: str
) -> np.ndarray:
    """The first `counts[c]` images of one seeded permutation of each class c (so a smaller count
    is nested in a larger one); a class with fewer than `required` images is a one-line error."""
    rng = np.random.default_rng(seed)
    chosen = []
    for cls in range(len(class_names)):
        members = np.flatnonzero(labels == cls)
        if len(members) < required:
            raise PipelineError(
                f"{what}: class {class_names[cls]!r} has only {len(members)} images in the "
                f"training pool, {required} needed"
            )
        chosen.append(rng.permutation(members)[: counts[cls]])
    return np.sort(np.concatenate(chosen))


def draw_rare_classes(num_classes: int, rare: int, seed: int, class_names: tuple[str, ...]) -> tuple[int, ...]:
    """The classes made rare in the imbalanced scenario, drawn anew per seed, so the result is
    not about which digits happen to be hard; the same for every training size of a seed."""
    if rare >= num_classes:
        raise PipelineError(
            f"evaluate.rare_classes: {rare} rare classes asked, the data has {len(class_names)}; "
            "at least one class must stay common"
        )
    return tuple(sorted(int(c) for c in np.random.default_rng([seed, 1]).choice(num_classes, rare, replace=False)))


def imbalanced_subset(
    labels: np.ndarray, rare_count: int, common_count: int, rare: tuple[int, ...], seed: int, class_names: tuple[str, ...]
) -> np.ndarray:
    """Indices of `rare_count` images of each rare class and `common_count` of every other class
    (capped at what the pool has, so a pool that is already imbalanced can be used as it is).

    Drawn like `per_class_subset` (one permutation per class from `seed`), so a class's images at
    a smaller count are inside those at a larger one."""
    counts = [rare_count if cls in rare else common_count for cls in range(len(class_names))]
    return _draw_per_class(labels, counts, rare_count, seed, class_names, "evaluate.train_sizes")
