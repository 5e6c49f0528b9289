"""Choosing each arm's settings on `val`, with the same budget for every arm, never on `test`.

Every arm of the learning curve (and the generate stage, for its Parquet file) tries exactly
`evaluate.budget` settings: the start point (params as given, `auto` knobs at their first
candidate) and then settings drawn at random, without repetition, from the arm's own grid. The
grid is the product of the knobs the arm can tune (`Arm.knobs`): every arm tunes its training
length and learning rate, classic arms the number of augmented copies, VAE arms the sampling
knobs left `auto` and the synthetic loss weight. Random search needs no order between the tries,
so all of them train together in one batched fit (`pipeline.models.batched`), and an equal count
of tries per arm means no arm gets more chances to be lucky on `val` than another.

The tries' training lengths are rungs of successive halving (Jamieson & Talwalkar, 2016): every
run trains to the shortest length and is scored on val; of an arm's runs that need longer, the
better half goes on (`survivors`), and so on. A stopped run's longer settings count as tried, with
no score (`stopped_at` in the trace). Every arm is cut by the same rule, so the budget stays equal,
and the weaker runs never train to the long lengths that cost the most (a digits cell's tries:
5.8 s before, 4.0 s with halving, one thread).

A later try replaces the best so far only if it gets more than one extra val image right
(`MARGIN_IMAGES`): ties keep the start point, and the last-bit float noise between CPUs, which can
move one val prediction, cannot flip a choice.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pipeline.config import GenerateConfig, Params
from pipeline.data.imageset import ImageSet
from pipeline.errors import PipelineError
from pipeline.evaluation.arms import TRAINING, Arm
from pipeline.models.classify import Classifier
from pipeline.models.cvae import CVAE
from pipeline.models.sampling import draw

AUTO = "auto"
# Candidates of the sampling knobs left `auto`; the first is the start point.
CANDIDATES: dict[str, tuple] = {
    "strategy": ("prior", "borrow", "posterior", "interpolate"),
    "temperature": (1.0, 0.5, 2.0),
    "ratio": (10.0, 3.0, 1.0),
    "min_confidence": (0.0, 0.9),
    "synthetic_weight": (1.0, 0.3),
}
GENERATION_KNOBS = ("strategy", "temperature", "ratio", "min_confidence")
# From `LARGE_IMAGES_FROM` px the strategy search starts at `posterior`: codes near the class's own
# training images, where a decoder trained on a handful of them is known to draw the class. On the
# hard 28x28 letters at 5 per class (3 seeds) posterior samples are recognised as their class
# 0.93 of the time, prior ones 0.82, with more diversity (0.85 / 0.75) and recall (0.45 / 0.39);
# on the 28x28 shapes folder posterior leads too. On the 8x8 digits prior keeps more recall at 5
# per class (0.12 against 0.03), so small images keep `prior` first (docs/vae.md).
LARGE_IMAGE_START = "posterior"
# The imbalanced scenario's knobs (first = start). rare_fill: rows added to each rare class, as a
# share of its gap to the common count, the same candidates for every adding arm; tau: logit
# adjustment's scale of log(prior); weight_power: class weights (1/frequency)^power.
IMBALANCE_CANDIDATES: dict[str, tuple] = {"rare_fill": (1.0, 0.5, 2.0), "tau": (1.0, 0.5), "weight_power": (1.0, 0.5)}
# The semi-supervised scenario's knobs: the confidence a pseudo-label needs, and the rounds of
# self-training (a round's student labels the unlabeled images for the next).
SEMI_CANDIDATES: dict[str, tuple] = {"pseudo_threshold": (0.9, 0.7, 0.97), "pseudo_rounds": (1, 2)}
LENGTH_FRACTIONS = (1.0, 0.5, 0.25)  # training lengths tried: these shares of `evaluate.steps`
LR_FACTORS = (1.0, 0.4)  # learning rates tried: these multiples of `evaluate.lr`
COPY_FRACTIONS = (1.0, 0.3)  # classic copies tried: these shares of `evaluate.classic_copies`
MARGIN_IMAGES = 1  # a later try must get more than this many extra val images right
BACK_OFF_WEIGHT = 0.1  # the synthetic loss weight of the back-off (`back_off`), below every candidate

Setting = dict[str, object]  # knob -> concrete value


@dataclass
class Selection:
    """The chosen setting, its validation accuracy and every setting tried."""

    chosen: Setting
    val_acc: float
    trace: list[dict] = field(default_factory=list)  # {"setting", "val_acc"} in the order tried

    @property
    def val_fits(self) -> int:
        return len(self.trace)

    def to_json(self) -> dict:
        return {"chosen": self.chosen, "val_acc": self.val_acc, "trace": self.trace, "val_fits": self.val_fits}


def knob_values(params: Params, large_images: bool = False) -> dict[str, tuple]:
    """Every tunable knob and its candidates (first = start); a pinned sampling knob has one.
    `large_images`: the cell's images are `LARGE_IMAGES_FROM` px or more (`config.large_images`)."""
    ev, gen = params.evaluate, params.generate
    requested = {**{k: getattr(gen, k) for k in GENERATION_KNOBS}, "synthetic_weight": ev.synthetic_weight}
    values = {knob: CANDIDATES[knob] if value == AUTO else (value,) for knob, value in requested.items()}
    if large_images and gen.strategy == AUTO:
        values["strategy"] = (LARGE_IMAGE_START, *(s for s in CANDIDATES["strategy"] if s != LARGE_IMAGE_START))
    values["steps"] = _distinct(max(1, round(ev.steps * f)) for f in LENGTH_FRACTIONS)
    values["lr"] = _distinct(ev.lr * f for f in LR_FACTORS)
    values["classic_copies"] = _distinct(max(1, round(ev.classic_copies * f)) for f in COPY_FRACTIONS)
    return {**values, **IMBALANCE_CANDIDATES, **SEMI_CANDIDATES}


def _distinct(values) -> tuple:
    return tuple(dict.fromkeys(values))


def arm_grid(arm: Arm, params: Params, large_images: bool = False) -> list[Setting]:
    """Every distinct setting the arm can try, the start point first."""
    values = knob_values(params, large_images)
    grid: dict[tuple, Setting] = {}  # insertion-ordered and deduplicated by the setting's values
    for combo in itertools.product(*(values[k] for k in arm.knobs)):
        setting = dict(zip(arm.knobs, combo))
        if setting.get("strategy") == "interpolate":
            setting["temperature"] = None  # interpolation ignores the temperature
        grid.setdefault(tuple(setting.values()), setting)
    return list(grid.values())


def effective_budget(arms: Sequence[Arm], params: Params) -> int:
    """`evaluate.budget`, or the smallest arm grid when that is smaller: equal for every arm."""
    return min(params.evaluate.budget, *(len(arm_grid(arm, params)) for arm in arms))


def plan(arm: Arm, params: Params, budget: int, seed: int, arm_index: int, large_images: bool = False) -> list[Setting]:
    """The `budget` settings the arm tries: the start point, for an arm that adds samples its
    back-off (`back_off`), then a seeded random draw from the grid."""
    grid = arm_grid(arm, params, large_images)
    fixed = [grid[0]]
    second = back_off(grid)
    if second is not None and budget > 1:
        fixed.append(second)
    rest = np.random.default_rng([seed, arm_index]).permutation(len(grid) - 1) + 1
    drawn = [grid[i] for i in rest if grid[i] not in fixed]
    return [*fixed, *drawn[: budget - len(fixed)]]


def back_off(grid: list[Setting]) -> Setting | None:
    """The start point with the fewest samples (`ratio`) at a weight below every candidate
    (`BACK_OFF_WEIGHT`, where the arm tunes `synthetic_weight`; a pinned weight stays), or None
    where that is the start point itself (an arm that adds no samples, or both amounts pinned at
    their smallest). Every sample-adding arm tries it, so a generator whose
    samples hurt costs little once the choice is made: with random tries alone, six draws from a
    grid of hundreds seldom include it. On the hard letters (issue #27) weight 0.3, the smallest
    candidate, still cost real + VAE 1.7 points at 5 images per class."""
    start = grid[0]
    setting = dict(start)
    ratios = [s["ratio"] for s in grid if s.get("ratio") is not None]  # none: `generate.per_class` sets the amount
    if ratios:
        setting["ratio"] = min(ratios)
    if len({s.get("synthetic_weight") for s in grid}) > 1:  # tuned, not pinned
        setting["synthetic_weight"] = BACK_OFF_WEIGHT
    return None if setting == start else setting


def choose(settings: list[Setting], val_acc: list[float | None], val_size: int, stopped_at: dict[int, int] | None = None) -> Selection:
    """The best of the tried settings by val accuracy, a later one winning only by a margin.

    `None` marks a setting with no val score: its filter left no samples to train on, or (listed
    in `stopped_at`: index -> steps) successive halving stopped its run before its length."""
    margin = MARGIN_IMAGES / max(val_size, 1)
    best: int | None = None
    for i, acc in enumerate(val_acc):
        if acc is not None and (best is None or acc > val_acc[best] + margin + 1e-12):
            best = i
    if best is None:
        raise PipelineError("generate.min_confidence: the confidence filter rejected every sample; lower it")
    trace: list[dict] = [{"setting": s, "val_acc": a} for s, a in zip(settings, val_acc)]
    for i, steps in (stopped_at or {}).items():
        trace[i]["stopped_at"] = steps
    return Selection(settings[best], val_acc[best], trace)


def survivors(scores: list[float], val_size: int) -> list[bool]:
    """Successive halving's cut: which runs train on to the next length. The better half (rounded
    up) goes on, and so does every run within `MARGIN_IMAGES` val images of the last one kept, so a
    one-image float difference between CPUs cannot stop a different run."""
    if not scores:
        return []
    keep = -(-len(scores) // 2)
    cutoff = sorted(scores, reverse=True)[keep - 1] - MARGIN_IMAGES / max(val_size, 1) - 1e-12
    return [score >= cutoff for score in scores]


def generation_config(gen: GenerateConfig, setting: Setting) -> GenerateConfig:
    """`gen` with the sampling knobs of a concrete setting filled in."""
    update = {knob: setting[knob] for knob in GENERATION_KNOBS if knob in setting}
    if update.get("temperature", 0) is None:
        update["temperature"] = 1.0  # interpolation ignores it; a number keeps the config valid
    return gen.model_copy(update=update)


class SampleCache:
    """A VAE's samples for a setting, drawn once per distinct combination of sampling knobs."""

    def __init__(self, model: CVAE, real: ImageSet, gen: GenerateConfig, seed: int, judge: Classifier | None) -> None:
        self.model, self.real, self.gen, self.seed, self.judge = model, real, gen, seed, judge
        self.drawn: dict[tuple, ImageSet] = {}

    def __call__(self, setting: Setting) -> ImageSet:
        cfg = generation_config(self.gen, setting)
        key = (cfg.strategy, cfg.temperature, cfg.ratio, cfg.min_confidence)
        if key not in self.drawn:
            scorer = self.judge.class_probabilities if cfg.min_confidence > 0 and self.judge else None
            self.drawn[key] = draw(self.model, self.real, cfg, self.seed, scorer)
        return self.drawn[key]

    def resized(self, per_class: int) -> SampleCache:
        """A cache of the same VAE, images, seed and filter drawing `per_class` samples of every
        class whatever a setting's `ratio`: what a quality measure of `per_class` per class needs."""
        return SampleCache(self.model, self.real, self.gen.model_copy(update={"per_class": per_class, "ratio": None}), self.seed, self.judge)


def show_value(value: object) -> str:
    """A knob value as tables print it: `0.5`, `10`, `posterior`."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def sampling_part(setting: Setting) -> Setting:
    """The knobs of a setting that decide the samples (and their weight), without the training."""
    return {k: v for k, v in setting.items() if k in (*GENERATION_KNOBS, "synthetic_weight")}


def data_part(setting: Setting) -> Setting:
    """The knobs of a setting that decide the training rows: all but the training length and rate."""
    return {k: v for k, v in setting.items() if k not in TRAINING}


def describe(setting: Setting) -> str:
    """Short human form for tables, e.g. `200 steps, lr 0.005, posterior T=0.5, 3x, conf>=0.9, w=0.3`."""
    parts = []
    if "steps" in setting:
        parts.append(f"{setting['steps']} steps")
    if "lr" in setting:
        parts.append(f"lr {setting['lr']:g}")
    if "classic_copies" in setting:
        parts.append(f"{setting['classic_copies']} copies")
    if "strategy" in setting:
        temperature = setting.get("temperature")
        parts.append(str(setting["strategy"]) + (f" T={temperature:g}" if temperature is not None else ""))
    if "ratio" in setting:
        parts.append(f"{setting['ratio']:g}x" if setting["ratio"] is not None else "per_class")
    if setting.get("min_confidence"):
        parts.append(f"conf>={setting['min_confidence']:g}")
    if "synthetic_weight" in setting:
        parts.append(f"w={setting['synthetic_weight']:g}")
    if "rare_fill" in setting:
        parts.append(f"rare fill {setting['rare_fill']:g}")
    if "pseudo_threshold" in setting:
        parts.append(f"pseudo conf>={setting['pseudo_threshold']:g}")
    if "pseudo_rounds" in setting:
        parts.append(f"{setting['pseudo_rounds']} round(s)")
    if "tau" in setting:
        parts.append(f"tau {setting['tau']:g}")
    if "weight_power" in setting:
        parts.append(f"weights^{setting['weight_power']:g}")
    return ", ".join(parts)
