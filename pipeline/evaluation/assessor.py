"""The independent judge of sample quality: a CNN trained on real images no generator trained on.

Every quality metric is read through it (label fidelity is its verdict; precision, recall,
diversity and the suite live in its features), so it is trained as well as the images allow:
with `COPIES_FACTOR` times the arms' classic copies and `STEPS_FACTOR` times their longest
training. A judge that misreads real images caps label fidelity at its own accuracy and calls
that the generator's fault.

The learning curve's assessor is trained once per run, on `val` (`run_assessor`): no VAE trains
on val (it only picks their epoch), so the judge is independent of every cell's generator, and one
judge reads every cell and arm alike. Trained once, it can afford the long recipe: on the hard
28x28 letters (20 val images per letter, 3 seeds x 2 sizes) it names 96.8% of the cells' held-out
real letters, where the per-cell judge it replaced (25-27 other pool images per letter, 6x steps,
10 copies, refitted in every cell) named 95.9% and cost 6 s a cell; on the digits 98.2% against
98.6%, 5 s a cell.
"""

from __future__ import annotations

import hashlib

from pipeline.config import EvaluateConfig, TrainerConfig
from pipeline.data.augment import classic_copies
from pipeline.data.imageset import ImageSet
from pipeline.models.classify import Classifier, TrainingRows, fit_classifier

STEPS_FACTOR = 24  # 4800 steps at the default evaluate.steps (200); 6x named 92-95% of the hard letters from val
COPIES_FACTOR = 2  # 20 classic copies per image at the default evaluate.classic_copies (10)

_RUN_ASSESSORS: dict[str, Classifier] = {}  # one per process: the cells a worker runs share it


def fit_assessor(images: ImageSet, cfg: EvaluateConfig, trainer: TrainerConfig, seed: int) -> Classifier:
    """The assessor CNN of `images` (never a generator's training images, nor test)."""
    rows = TrainingRows.of(images) + TrainingRows.of(classic_copies(images, cfg.classic_copies * COPIES_FACTOR, seed))
    return fit_classifier(rows, cfg.model_copy(update={"steps": cfg.steps * STEPS_FACTOR}), trainer, seed, kind="cnn")


def run_assessor(val: ImageSet, cfg: EvaluateConfig, trainer: TrainerConfig, seed: int) -> Classifier:
    """The run's assessor, trained on `val` with the run's seed: fitted on a process's first call,
    reused by every later cell of the same run there (a deterministic fit, so every worker process,
    local or on a Ray node, holds the same judge)."""
    key = _digest(val, cfg, trainer, seed)
    if key not in _RUN_ASSESSORS:
        _RUN_ASSESSORS.clear()  # another run's judge is not needed any more
        _RUN_ASSESSORS[key] = fit_assessor(val, cfg, trainer, seed)
    return _RUN_ASSESSORS[key]


def _digest(val: ImageSet, cfg: EvaluateConfig, trainer: TrainerConfig, seed: int) -> str:
    h = hashlib.sha256()
    for part in (val.images.tobytes(), val.labels.tobytes(), repr(val.class_names).encode(), cfg.model_dump_json().encode(),
                 trainer.model_dump_json().encode(), str(seed).encode()):
        h.update(part)
    return h.hexdigest()
