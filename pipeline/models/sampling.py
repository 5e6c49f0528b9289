"""Drawing labeled samples from a trained CVAE: latent strategies and acceptance filters.

Strategies decide where in latent space to decode: `prior` (z ~ N(0, T^2 I)), `posterior` (near
the encoded latents of real training images of the class), `interpolate` (between two of them)
and `borrow` (near the latents of training images of *any* class, decoded with the target label:
the latent carries style, the label the class, so a class with few images borrows the strokes,
slants and thicknesses of all the others). Filters then reject samples a real-data classifier
does not recognise as their class, or that sit too close to a training image (near-copies add
nothing and hint at memorisation).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from pipeline.config import GenerateConfig
from pipeline.data.images import tensor_to_uint8
from pipeline.data.imageset import ImageSet
from pipeline.evaluation.quality import nearest_distances
from pipeline.models.cvae import CVAE

# probability of each class for (N, C, H, W) images in [0, 1]
Scorer = Callable[[torch.Tensor], torch.Tensor]
MAX_DRAWS_PER_SAMPLE = 20  # give up on a class whose samples the filters keep rejecting


@dataclass
class Batch:
    images: np.ndarray  # (N, H, W, C) uint8
    labels: np.ndarray
    confidence: np.ndarray  # classifier probability of the conditioned class (nan: no filter)
    nn_distance: np.ndarray  # pixel L2 distance to the closest training image of any class


@dataclass
class Tally:
    drawn: dict[int, int] = field(default_factory=dict)
    kept: dict[int, int] = field(default_factory=dict)
    rejected_confidence: int = 0
    rejected_copy: int = 0


Codes = tuple[torch.Tensor, torch.Tensor]  # posterior (mu, logvar) of some training images


def encode_images(model: CVAE, images: np.ndarray, labels: np.ndarray) -> Codes:
    """Posterior (mu, logvar) of (N, C, H, W) float images under their own labels."""
    return model.encode(torch.from_numpy(images), torch.from_numpy(labels).long())


def latents_for_class(model: CVAE, strategy: str, temperature: float, codes: Codes | None, n: int, gen: torch.Generator) -> torch.Tensor:
    """(n, latent_dim) latents: from the prior, or around / between `codes` (the class's own
    training images for `posterior` and `interpolate`, every class's for `borrow`)."""
    noise = torch.randn(n, model.latent_dim, generator=gen)
    if strategy == "prior":
        return temperature * noise
    mu, logvar = codes
    pick = torch.randint(len(mu), (n,), generator=gen)
    if strategy in ("posterior", "borrow"):
        return mu[pick] + temperature * torch.exp(0.5 * logvar[pick]) * noise
    other = torch.randint(len(mu), (n,), generator=gen)
    alpha = torch.rand(n, 1, generator=gen)
    return (1 - alpha) * mu[pick] + alpha * mu[other]  # interpolate


def targets_per_class(cfg: GenerateConfig, train: ImageSet) -> np.ndarray:
    if cfg.ratio is not None:
        return np.maximum(1, np.rint(train.class_counts() * cfg.ratio)).astype(int)
    return np.full(train.num_classes, cfg.per_class, dtype=int)


def generate(
    model: CVAE,
    train: ImageSet,
    cfg: GenerateConfig,
    seed: int,
    scorer: Scorer | None = None,
    tally: Tally | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> Iterator[Batch]:
    """Yield accepted batches class by class; memory is bounded by `cfg.batch_size`."""
    if not cfg.is_resolved():
        raise ValueError("generate settings still `auto`: resolve them first (pipeline.evaluation.selection)")
    model.eval()
    tally = tally if tally is not None else Tally()
    train_x = train.as_float()
    train_flat = train_x.reshape(len(train), -1)
    every_class = encode_images(model, train_x, train.labels) if cfg.strategy == "borrow" else None
    for cls, target in enumerate(targets_per_class(cfg, train)):
        gen = torch.Generator().manual_seed(seed * 100_003 + cls)
        codes = every_class
        if cfg.strategy in ("posterior", "interpolate"):
            own = train.labels == cls
            codes = encode_images(model, train_x[own], train.labels[own])
        kept = drawn = 0
        while kept < target and drawn < target * MAX_DRAWS_PER_SAMPLE:
            n = min(cfg.batch_size, max(target - kept, 1) * (2 if cfg.min_confidence or cfg.min_nn_distance else 1))
            z = latents_for_class(model, cfg.strategy, cfg.temperature, codes, n, gen)
            images = model.decode(z, torch.full((n,), cls, dtype=torch.long))
            drawn += n
            batch, n_conf, n_copy = _filter(images, cls, cfg, scorer, train_flat)
            tally.rejected_confidence += n_conf
            tally.rejected_copy += n_copy
            take = min(len(batch.labels), target - kept)
            if take:
                kept += take
                if on_batch:
                    on_batch(take)
                yield Batch(batch.images[:take], batch.labels[:take], batch.confidence[:take], batch.nn_distance[:take])
        tally.drawn[cls], tally.kept[cls] = drawn, kept


def draw(model: CVAE, train: ImageSet, cfg: GenerateConfig, seed: int, scorer: Scorer | None = None) -> ImageSet:
    """All accepted samples in memory: for the evaluation's small cells, not the Parquet stage."""
    batches = list(generate(model, train, cfg, seed, scorer))
    images = np.concatenate([b.images for b in batches]) if batches else np.empty((0, *train.images.shape[1:]), np.uint8)
    labels = np.concatenate([b.labels for b in batches]) if batches else np.empty(0, np.int64)
    return ImageSet(images, labels, train.class_names)


def _filter(images: torch.Tensor, cls: int, cfg: GenerateConfig, scorer: Scorer | None, train_flat: np.ndarray):
    n = len(images)
    confidence = np.full(n, np.nan)
    if scorer is not None:
        confidence = scorer(images)[:, cls].cpu().numpy().astype(np.float64)
    distance = nearest_distances(images.reshape(n, -1).cpu().numpy(), train_flat).astype(np.float64)
    keep_conf = ~(confidence < cfg.min_confidence)  # nan (no scorer) keeps
    keep_copy = distance >= cfg.min_nn_distance
    keep = keep_conf & keep_copy
    batch = Batch(tensor_to_uint8(images[torch.from_numpy(keep)]), np.full(int(keep.sum()), cls, np.int64), confidence[keep], distance[keep])
    return batch, int((~keep_conf).sum()), int((keep_conf & ~keep_copy).sum())
