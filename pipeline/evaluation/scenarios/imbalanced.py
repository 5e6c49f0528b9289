"""The imbalanced scenario: `size` images per rare class (drawn per seed), `common_per_class` per
other class; the usual fixes for rare classes against VAE samples of them, chosen on balanced
accuracy; the summary is `rare_summary`'s."""

from __future__ import annotations

import numpy as np

from pipeline.config import EvaluateConfig, GenerateConfig
from pipeline.data.imageset import ImageSet
from pipeline.data.splits import draw_rare_classes, imbalanced_subset
from pipeline.evaluation import rare_summary
from pipeline.evaluation.arms import IMBALANCED_ARMS, Arm
from pipeline.evaluation.imbalance import Rare
from pipeline.evaluation.scenarios import Draw, Scenario
from pipeline.evaluation.scoring import balanced_accuracy
from pipeline.evaluation.selection import IMBALANCE_CANDIDATES


def draw(pool: ImageSet, size: int, seed: int, cfg: EvaluateConfig) -> Draw:
    """The rare classes with their gap to the smallest common class (what `rare_fill` 1 fills)."""
    rare = draw_rare_classes(pool.num_classes, cfg.rare_classes, seed, pool.class_names)
    chosen = imbalanced_subset(pool.labels, size, cfg.common_per_class, rare, seed, pool.class_names)
    counts = np.bincount(pool.labels[chosen], minlength=pool.num_classes)
    common = min(int(counts[c]) for c in range(pool.num_classes) if c not in rare)
    return Draw(chosen, Rare(rare, max(1, common - size)))


def generation(gen: GenerateConfig, cell: Draw) -> GenerateConfig:
    """Sampling settings that draw, per class, as many samples as the largest `rare_fill` adds."""
    return gen.model_copy(update={"per_class": cell.rare.added_per_class(max(IMBALANCE_CANDIDATES["rare_fill"])), "ratio": None})


def record(tuned: dict, arms: tuple[Arm, ...], cell: Draw, real: ImageSet, vae=None, test=None) -> dict:
    return {"rare_classes": list(cell.rare.classes), "class_counts": real.class_counts().tolist(), "best_by_val": best_by_val(tuned, arms)}


def best_by_val(tuned: dict, arms: tuple[Arm, ...]) -> dict[str, str]:
    """The non-generative and the generative arm with the best val score in this cell (ties: the
    first in registry order), so "the best fix" is chosen as a user would choose it, not on test."""
    out = {}
    for group, generative in (("non_generative", False), ("generative", True)):
        names = [arm.name for arm in arms if arm.generative == generative]
        out[group] = max(names, key=lambda name: (tuned[name].selection.val_acc, -names.index(name)))
    return out


SCENARIO = Scenario(
    name="imbalanced", arms=lambda cfg: IMBALANCED_ARMS, draw=draw, metric=balanced_accuracy, headline="bal_acc_mean",
    quality_arm="vae_rare", generation=generation, record=record, marker="rare_classes",
    summarize_size=lambda group, arms, full_acc: rare_summary.summarize_size(group),
    per_class_means=lambda cells, arms: rare_summary.per_class_means(cells),
    plot_tables=lambda summary, cells, arms: rare_summary.plot_tables(summary, cells),
)
