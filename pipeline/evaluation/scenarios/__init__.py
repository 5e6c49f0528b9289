"""Scenarios of the learning curve, one module each: which real rows a cell draws, its arms, the
val metric its arms are chosen by, what a cell records beyond the scores, and its summary.

`cell.py` and `learning_curve.py` read the same for every scenario; a new one is one new module
registered in `SCENARIOS` (and its value in `evaluate.scenario`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pipeline.config import EvaluateConfig, GenerateConfig
from pipeline.data.imageset import ImageSet
from pipeline.evaluation.arms import Arm
from pipeline.evaluation.imbalance import Rare


@dataclass(frozen=True)
class Draw:
    """A cell's real rows: pool indices of its labeled images, and what its scenario adds to them
    (the rare classes of the imbalanced scenario)."""

    index: np.ndarray
    rare: Rare | None = None
    unlabeled: np.ndarray | None = None  # pool indices of images whose labels no model reads

    @property
    def used(self) -> np.ndarray:
        """Every pool row the cell's models see: kept out of the quality metrics' real images."""
        return self.index if self.unlabeled is None else np.union1d(self.index, self.unlabeled)

    @property
    def scored_classes(self) -> tuple[int, ...] | None:
        """Classes whose recall `scoring.score` reports apart (the rare ones), or None."""
        return None if self.rare is None else self.rare.classes


@dataclass(frozen=True)
class Scenario:
    name: str
    arms: Callable[[EvaluateConfig], tuple[Arm, ...]]
    draw: Callable[[ImageSet, int, int, EvaluateConfig], Draw]
    metric: Callable[[np.ndarray, np.ndarray], float]  # the val score each arm's settings are chosen by
    headline: str  # the summary key the stage prints per arm (acc_mean, bal_acc_mean)
    quality_arm: str  # the arm whose chosen sampling settings draw the samples whose quality is measured
    summarize_size: Callable[[list[dict], tuple[Arm, ...], list[float]], dict]  # (cells of a size, arms, full acc)
    per_class_means: Callable[[list[dict], tuple[Arm, ...]], dict]
    plot_tables: Callable[[dict, list[dict], tuple[Arm, ...]], dict[str, list[dict]]]
    generation: Callable[[GenerateConfig, Draw], GenerateConfig] = lambda gen, draw: gen
    # (tuned arms, arms, draw, real images, the cell's VAE module, test) -> keys the cell record adds;
    # test only to score a reference model, never to choose.
    record: Callable[..., dict] = lambda tuned, arms, draw, real, vae, test: {}
    # (VAE module, real images, unlabeled images, params, seed) -> extra row kinds for `RowSource`
    extra_rows: Callable[..., dict] = lambda vae, real, unlabeled, params, seed: {}
    marker: str | None = None  # a cell record key only this scenario writes (to tell cells apart)


def _registry() -> dict[str, Scenario]:
    from pipeline.evaluation.scenarios import balanced, imbalanced, semi_supervised

    return {scenario.name: scenario for scenario in (balanced.SCENARIO, imbalanced.SCENARIO, semi_supervised.SCENARIO)}


def get(name: str) -> Scenario:
    return _registry()[name]


def of_cells(cells: list[dict]) -> Scenario:
    """The scenario that wrote these cell records (by the key only it writes; balanced has none)."""
    for scenario in _registry().values():
        if scenario.marker is not None and cells and scenario.marker in cells[0]:
            return scenario
    return get("balanced")
