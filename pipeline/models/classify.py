"""Fit a downstream classifier on (real, augmented, synthetic) rows and score it.

Every arm of the evaluation trains for the same number of optimizer steps (`evaluate.steps`), so
adding data changes what the classifier sees, not how long it trains: gains come from the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from pipeline.config import EvaluateConfig, TrainerConfig
from pipeline.data.datamodule import ImageDataModule
from pipeline.data.imageset import ImageSet
from pipeline.models.classifier import LitClassifier
from pipeline.models.training import make_trainer, seed_all


@dataclass(frozen=True)
class TrainingRows:
    """Rows a classifier learns from; synthetic rows may weigh less than real ones."""

    data: ImageSet
    weights: np.ndarray

    @staticmethod
    def of(data: ImageSet, weight: float = 1.0) -> TrainingRows:
        return TrainingRows(data, np.full(len(data), weight, dtype=np.float32))

    def __add__(self, other: TrainingRows) -> TrainingRows:
        merged = ImageSet(
            np.concatenate([self.data.images, other.data.images]),
            np.concatenate([self.data.labels, other.data.labels]),
            self.data.class_names,
        )
        return TrainingRows(merged, np.concatenate([self.weights, other.weights]))


class Classifier:
    """A fitted CNN or logistic regression behind one interface."""

    def __init__(self, model: LitClassifier | LogisticRegression) -> None:
        self.model = model

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """x: (N, C, H, W) float32 in [0, 1]."""
        if isinstance(self.model, LogisticRegression):
            return self.model.predict_proba(x.reshape(len(x), -1))
        return self.model.predict_proba(torch.from_numpy(x)).numpy()

    def class_probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """Tensor in, tensor out: the form `sampling.generate` takes as its confidence scorer."""
        return torch.from_numpy(self.predict_proba(images.numpy()))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.predict_proba(x).argmax(1)

    def features(self, x: np.ndarray) -> np.ndarray:
        """Penultimate CNN activations (pixels for logreg): the space quality metrics use."""
        if isinstance(self.model, LogisticRegression):
            return x.reshape(len(x), -1)
        return self.model.features(torch.from_numpy(x)).numpy()


def fit_classifier(
    rows: TrainingRows, cfg: EvaluateConfig, trainer_cfg: TrainerConfig, seed: int, kind: str | None = None
) -> Classifier:
    kind = kind or cfg.classifier
    seed_all(seed, trainer_cfg)
    if kind == "logreg":
        model = LogisticRegression(max_iter=300, C=0.5, random_state=seed)
        model.fit(rows.data.as_float().reshape(len(rows.data), -1), rows.data.labels, sample_weight=rows.weights)
        return Classifier(model)
    module = LitClassifier(rows.data.image_shape[0], rows.data.num_classes, cfg.lr)
    datamodule = ImageDataModule(rows.data, None, cfg.batch_size, trainer_cfg.num_workers, seed=seed, train_weights=rows.weights)
    trainer = make_trainer(trainer_cfg, max_epochs=-1, progress_bar=False, validate=False, max_steps=cfg.steps)
    trainer.fit(module, datamodule=datamodule)
    return Classifier(module.cpu())
