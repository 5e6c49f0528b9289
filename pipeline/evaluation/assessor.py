"""The independent judge of sample quality: a CNN trained on real images no cell model saw.

Every quality metric is read through it (label fidelity is its verdict; precision, recall,
diversity and the suite live in its features), so it is trained as well as the images allow:
with classic copies (`evaluate.classic_copies`) and `STEPS_FACTOR` times the arms' longest
training. A judge that misreads real images caps label fidelity at its own accuracy and calls
that the generator's fault: on the hard 28x28 letters (25 images per class, 3 seeds) the arms'
plain recipe (200 steps, no copies) names 85% of held-out real letters, this one 96%.
"""

from __future__ import annotations

from pipeline.config import EvaluateConfig, TrainerConfig
from pipeline.data.augment import classic_copies
from pipeline.data.imageset import ImageSet
from pipeline.models.classify import Classifier, TrainingRows, fit_classifier

STEPS_FACTOR = 6  # 1200 steps at the default evaluate.steps (200); 600 reached 94% on the letters


def fit_assessor(images: ImageSet, cfg: EvaluateConfig, trainer: TrainerConfig, seed: int) -> Classifier:
    """The assessor CNN of `images` (never the cell's training images, nor test)."""
    rows = TrainingRows.of(images) + TrainingRows.of(classic_copies(images, cfg.classic_copies, seed))
    return fit_classifier(rows, cfg.model_copy(update={"steps": cfg.steps * STEPS_FACTOR}), trainer, seed, kind="cnn")
