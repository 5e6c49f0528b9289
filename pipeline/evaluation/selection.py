"""Choosing how to sample and weight synthetic images, on `val` and never on `test`.

Every knob left `auto` in params (sampling strategy, temperature, amount, confidence filter,
synthetic loss weight) is searched one at a time in a fixed order over a short list of candidates,
the others held at their best so far (greedy coordinate search: 9 classifier fits rather than the
108 of the full grid). A candidate replaces the current value only if it scores strictly higher
validation accuracy, so ties keep the plain start point. Each try is kept in a trace that the
report turns into an ablation table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pipeline.config import EvaluateConfig, GenerateConfig, Params
from pipeline.errors import PipelineError
from pipeline.data.imageset import ImageSet
from pipeline.evaluation.scoring import accuracy
from pipeline.models.classify import Classifier, TrainingRows, fit_classifier
from pipeline.models.cvae import CVAE
from pipeline.models.sampling import draw
from pipeline.models.training import single_device

AUTO = "auto"
# Search order and candidates; the first candidate is the start point.
CANDIDATES: dict[str, tuple] = {
    "strategy": ("prior", "posterior", "interpolate"),
    "temperature": (1.0, 0.5, 2.0),
    "ratio": (10.0, 3.0, 1.0),
    "min_confidence": (0.0, 0.9),
    "synthetic_weight": (1.0, 0.3),
}
GENERATION_KNOBS = ("strategy", "temperature", "ratio", "min_confidence")

Setting = dict[str, object]  # knob -> concrete value


@dataclass
class Selection:
    """The chosen setting, its validation accuracy and every setting tried on the way."""

    chosen: Setting
    val_acc: float
    trace: list[dict] = field(default_factory=list)  # {"knob", "value", "setting", "val_acc"}

    def to_json(self) -> dict:
        return {"chosen": self.chosen, "val_acc": self.val_acc, "trace": self.trace}


def requested(gen: GenerateConfig, evaluate: EvaluateConfig) -> Setting:
    """The knobs as params set them: a value, or `auto` for the search to fill in."""
    return {
        "strategy": gen.strategy,
        "temperature": gen.temperature,
        "ratio": gen.ratio,
        "min_confidence": gen.min_confidence,
        "synthetic_weight": evaluate.synthetic_weight,
    }


def generation_config(gen: GenerateConfig, setting: Setting) -> GenerateConfig:
    """`gen` with the sampling knobs of a concrete setting filled in."""
    return gen.model_copy(update={knob: setting[knob] for knob in GENERATION_KNOBS})


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


def search(request: Setting, val_accuracy: Callable[[Setting], float | None]) -> Selection:
    """Greedy search over the `auto` knobs of `request`; `val_accuracy` scores a concrete setting,
    or returns None when the setting yields no samples (its filter rejected them all)."""
    current = {knob: CANDIDATES[knob][0] if value == AUTO else value for knob, value in request.items()}
    scores: dict[tuple, float | None] = {}
    trace: list[dict] = []

    def tried(setting: Setting, knob: str) -> float:
        key = _key(setting)
        if key not in scores:
            scores[key] = val_accuracy(setting)
            trace.append({"knob": knob, "value": setting.get(knob), "setting": dict(setting), "val_acc": scores[key]})
        return -1.0 if scores[key] is None else scores[key]

    best = tried(current, "start")
    for knob in CANDIDATES:
        if request[knob] != AUTO or (knob == "temperature" and current["strategy"] == "interpolate"):
            continue  # pinned by params, or (temperature) ignored by interpolation
        winner = current[knob]
        for value in CANDIDATES[knob]:
            acc = tried({**current, knob: value}, knob)
            if acc > best:
                best, winner = acc, value
        current[knob] = winner
    if best < 0:
        raise PipelineError("generate.min_confidence: the confidence filter rejected every sample; lower it")
    return Selection(current, best, trace)


def choose_on_val(
    request: Setting,
    base: TrainingRows,
    samples: Callable[[Setting], ImageSet],
    fit: Callable[[TrainingRows], Classifier],
    val: ImageSet,
) -> tuple[Selection, Classifier]:
    """Search the setting whose samples, added to `base`, give the best val accuracy.

    Returns the selection and the classifier fitted with the chosen setting (no refit needed).
    """
    models: dict[tuple, Classifier] = {}

    def val_accuracy(setting: Setting) -> float | None:
        synthetic = samples(setting)
        if not len(synthetic):
            return None
        model = fit(base + TrainingRows.of(synthetic, float(setting["synthetic_weight"])))
        models[_key(setting)] = model
        return accuracy(val.labels, model.predict(val.as_float()))

    selection = search(request, val_accuracy)
    return selection, models[_key(selection.chosen)]


class SampleSearch:
    """A VAE's samples of `real` and the classifier fits that judge them on `val`: the one wiring
    the generate stage and every learning-curve cell search with."""

    def __init__(self, params: Params, model: CVAE, real: ImageSet, val: ImageSet, seed: int, judge: Classifier | None) -> None:
        trainer = single_device(params.trainer)
        self.request = requested(params.generate, params.evaluate)
        self.samples = SampleCache(model, real, params.generate, seed, judge)
        self.fit = lambda rows: fit_classifier(rows, params.evaluate, trainer, seed)
        self.val = val

    def choose(self, base: TrainingRows) -> tuple[Selection, Classifier]:
        """The best setting for samples added to `base`, and the classifier fitted with it."""
        return choose_on_val(self.request, base, self.samples, self.fit, self.val)


def fit_judge(real: ImageSet, params: Params, seed: int) -> Classifier:
    """The CNN that the confidence filter asks: trained on the same real images as the VAE."""
    return fit_classifier(TrainingRows.of(real), params.evaluate, single_device(params.trainer), seed, kind="cnn")


def _key(setting: Setting) -> tuple:
    return tuple(sorted(setting.items()))


def show_value(value: object) -> str:
    """A knob value as tables print it: `0.5`, `10`, `posterior`."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def describe(setting: Setting) -> str:
    """Short human form for tables, e.g. `posterior T=0.5, 3x, conf>=0.9, w=0.3`."""
    parts = [str(setting["strategy"])]
    if setting["strategy"] != "interpolate":
        parts[0] += f" T={setting['temperature']:g}"
    parts.append(f"{setting['ratio']:g}x" if setting.get("ratio") is not None else "per_class")
    if setting["min_confidence"]:
        parts.append(f"conf>={setting['min_confidence']:g}")
    parts.append(f"w={setting['synthetic_weight']:g}")
    return ", ".join(parts)
