"""Fit downstream classifiers on (real, augmented, synthetic) rows, many at once.

A learning-curve cell fits dozens of small CNNs (every arm tries `evaluate.budget` settings on
val). They train together in one plain torch loop per learning rate (`pipeline.models.batched`),
and each training length an arm tries is a snapshot of one run rather than a run of its own.
Lightning stays for the VAE, whose training benefits from its callbacks, logging and strategies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from torch import nn

from pipeline.config import EvaluateConfig, TrainerConfig
from pipeline.data.imageset import ImageSet
from pipeline.models.batched import BatchedRun, FitJob
from pipeline.models.training import seed_all

PREDICT_BATCH = 2048


@dataclass(frozen=True)
class TrainingRows:
    """Rows a classifier learns from; synthetic rows may weigh less than real ones. A logit
    offset (one per class) is added to the logits in the training loss only (logit adjustment)."""

    data: ImageSet
    weights: np.ndarray
    logit_offset: np.ndarray | None = None

    @staticmethod
    def of(data: ImageSet, weight: float = 1.0) -> TrainingRows:
        return TrainingRows(data, np.full(len(data), weight, dtype=np.float32))

    def __add__(self, other: TrainingRows) -> TrainingRows:
        if self.logit_offset is not None or other.logit_offset is not None:
            raise ValueError("add rows before setting a logit offset: it depends on all of them")
        merged = ImageSet(
            np.concatenate([self.data.images, other.data.images]),
            np.concatenate([self.data.labels, other.data.labels]),
            self.data.class_names,
        )
        return TrainingRows(merged, np.concatenate([self.weights, other.weights]))


@dataclass(frozen=True)
class FitRequest:
    """One classifier to fit: its rows and how to train on them. Requests that share a `rows`
    object and a learning rate are one training run, read off at each requested length."""

    rows: TrainingRows
    steps: int
    lr: float


class Classifier:
    """A fitted CNN or logistic regression behind one interface."""

    def __init__(self, model: nn.Module | LogisticRegression) -> None:
        self.model = model

    @torch.no_grad()
    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """x: (N, C, H, W) float32 in [0, 1]."""
        if isinstance(self.model, LogisticRegression):
            return self.model.predict_proba(x.reshape(len(x), -1))
        self.model.eval()
        tensor = torch.from_numpy(x)
        return torch.cat([F.softmax(self.model(tensor[i : i + PREDICT_BATCH]), 1) for i in range(0, len(x), PREDICT_BATCH)]).numpy()

    def class_probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """Tensor in, tensor out: the form `sampling.generate` takes as its confidence scorer."""
        return torch.from_numpy(self.predict_proba(images.cpu().numpy()))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.predict_proba(x).argmax(1)

    @torch.no_grad()
    def features(self, x: np.ndarray) -> np.ndarray:
        """Penultimate CNN activations (pixels for logreg): the space quality metrics use."""
        if isinstance(self.model, LogisticRegression):
            return x.reshape(len(x), -1)
        self.model.eval()
        tensor = torch.from_numpy(x)
        return torch.cat([self.model.features(tensor[i : i + PREDICT_BATCH]) for i in range(0, len(x), PREDICT_BATCH)]).numpy()


class FitRuns:
    """The training runs behind fit requests, advanced together one length (rung) at a time.

    A run is one set of rows at one learning rate; its requests are lengths read off it. The runs
    of a learning rate train in one `BatchedRun`, each only as long as its longest request (a
    shorter run's model equals a longer run's snapshot: every job's batches and dropout are a
    prefix of its longer schedule). Between rungs a caller may stop runs (successive halving,
    `tuning.tune`)."""

    def __init__(self, requests: list[FitRequest], cfg: EvaluateConfig, trainer_cfg: TrainerConfig, seed: int) -> None:
        seed_all(seed, trainer_cfg)
        keys: dict[tuple[int, float], int] = {}
        self.run_of = [keys.setdefault((id(r.rows), r.lr), len(keys)) for r in requests]
        self.longest = [0] * len(keys)
        for run, r in zip(self.run_of, requests):
            self.longest[run] = max(self.longest[run], r.steps)
        first = {run: r for run, r in zip(self.run_of, requests)}  # run -> one of its requests
        self.rungs = sorted({r.steps for r in requests})
        self.batches: list[tuple[BatchedRun, list[int]]] = []  # (batched run, run id of each of its jobs)
        for lr in dict.fromkeys(r.lr for r in requests):
            ids = [run for run in range(len(keys)) if first[run].lr == lr]
            jobs = [_job(first[run].rows, seed) for run in ids]
            longest = max(self.longest[run] for run in ids)
            batched = BatchedRun(jobs, first[ids[0]].rows.data.num_classes, longest, lr, cfg.batch_size, device(trainer_cfg))
            self.batches.append((batched, ids))

    def advance(self, steps: int) -> dict[int, Classifier]:
        """Train every running run to `steps`: {run id: its classifier there}. Runs whose longest
        request is `steps` end here."""
        models = {}
        for batched, ids in self.batches:
            if batched.running():
                models.update({ids[k]: Classifier(net) for k, net in batched.advance(steps).items()})
        self.stop({run for run in models if self.longest[run] <= steps})
        return models

    def stop(self, runs: set[int]) -> None:
        for batched, ids in self.batches:
            batched.stop({k for k, run in enumerate(ids) if run in runs})


def _job(rows: TrainingRows, seed: int) -> FitJob:
    return FitJob(rows.data.as_float(), rows.data.labels, rows.weights, seed, rows.logit_offset)


def fit_classifiers(
    requests: list[FitRequest], cfg: EvaluateConfig, trainer_cfg: TrainerConfig, seed: int, kind: str | None = None
) -> list[Classifier]:
    """One classifier per request, all from `seed` (the same initialisation for every arm, so
    gains are paired), trained together (`FitRuns`), none stopped early."""
    kind = kind or cfg.classifier
    if kind == "logreg":  # trains to convergence: the requested length does not apply
        seed_all(seed, trainer_cfg)
        if any(r.rows.logit_offset is not None for r in requests):
            raise ValueError("logistic regression takes no logit offset: logit adjustment needs the cnn")
        distinct = {id(r.rows): r.rows for r in requests}
        fitted = {key: _fit_logreg(rows, seed) for key, rows in distinct.items()}
        return [fitted[id(r.rows)] for r in requests]
    runs = FitRuns(requests, cfg, trainer_cfg, seed)
    models = {(run, steps): model for steps in runs.rungs for run, model in runs.advance(steps).items()}
    return [models[(run, r.steps)] for run, r in zip(runs.run_of, requests)]


def fit_classifier(
    rows: TrainingRows, cfg: EvaluateConfig, trainer_cfg: TrainerConfig, seed: int, kind: str | None = None
) -> Classifier:
    """One classifier at the params' own length and learning rate."""
    return fit_classifiers([FitRequest(rows, cfg.steps, cfg.lr)], cfg, trainer_cfg, seed, kind)[0]


def device(trainer_cfg: TrainerConfig) -> str:
    """The torch device of `trainer.accelerator` for the plain training loop."""
    wants_gpu = trainer_cfg.accelerator in ("gpu", "cuda") or (trainer_cfg.accelerator == "auto" and torch.cuda.is_available())
    return "cuda" if wants_gpu else "cpu"


def _fit_logreg(rows: TrainingRows, seed: int) -> Classifier:
    model = LogisticRegression(max_iter=300, C=0.5, random_state=seed)
    model.fit(rows.data.as_float().reshape(len(rows.data), -1), rows.data.labels, sample_weight=rows.weights)
    return Classifier(model)
