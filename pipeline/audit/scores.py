"""How well the trained CVAE explains each image under every label: an importance-weighted bound.

    log p(x | y) >= log (1/S) sum_s p(x | z_s, y) p(z_s) / q(z_s | x, y),   z_s ~ q(z | x, y)

With S = 1 this is a one-sample ELBO, whose noise reorders images of similar score; the bound
tightens and its variance shrinks as S grows (Burda et al., 2016, "Importance weighted
autoencoders"). The same noise draws serve every label of an image (common random numbers), so the
differences between labels -- what the audit ranks by -- are less noisy than the bounds themselves.
Deterministic: the draws come from a seeded generator, in a fixed order of batches.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.data.imageset import ImageSet
from pipeline.models.cvae import CVAE

LOG_2PI = math.log(2 * math.pi)


def log_likelihood(model: CVAE, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x | z, y) per image (B,), summed over pixels: the likelihood `CVAE.loss_terms` trains."""
    if model.likelihood == "bernoulli":
        per_pixel = -F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    else:
        sigma = model.log_sigma.exp()
        per_pixel = -0.5 * ((x - torch.sigmoid(logits)) / sigma) ** 2 - model.log_sigma - 0.5 * LOG_2PI
    return per_pixel.flatten(1).sum(1)


def _bound(model: CVAE, x: torch.Tensor, cls: int, eps: torch.Tensor) -> torch.Tensor:
    """The bound of log p(x | cls) for each image of the batch (B,); eps is (S, B, D) noise."""
    samples, batch, dim = eps.shape
    y = torch.full((batch,), cls, dtype=torch.long)
    mu, logvar = model.encoder(x, y)
    z = mu + eps * torch.exp(0.5 * logvar)  # (S, B, D)
    logits = model.decoder(z.reshape(samples * batch, dim), y.repeat(samples))
    log_px = log_likelihood(model, logits, x.repeat(samples, 1, 1, 1)).view(samples, batch)
    log_pz = (-0.5 * z.pow(2) - 0.5 * LOG_2PI).sum(-1)
    log_qz = (-0.5 * eps.pow(2) - 0.5 * logvar - 0.5 * LOG_2PI).sum(-1)  # N(z; mu, sigma), z = mu + sigma * eps
    return torch.logsumexp(log_px + log_pz - log_qz, dim=0) - math.log(samples)


@torch.no_grad()
def label_bounds(model: CVAE, data: ImageSet, samples: int, seed: int, batch_size: int = 1024) -> np.ndarray:
    """(N, num_classes) float64: the bound of log p(x | y) of every image under every label.

    `batch_size` counts decoded images (images x samples), which is what bounds memory. The noise
    is drawn for all images up front (N x S x D floats, 60 MB for 60k images at S = D = 16), so
    the result does not depend on the batch size."""
    model.eval()
    eps_all = torch.randn(len(data), samples, model.latent_dim, generator=torch.Generator().manual_seed(seed))
    x_all = torch.from_numpy(data.as_float())
    rows = max(1, batch_size // samples)
    parts = []
    for start in range(0, len(data), rows):
        x, eps = x_all[start : start + rows], eps_all[start : start + rows].transpose(0, 1)  # eps: (S, B, D)
        parts.append(torch.stack([_bound(model, x, cls, eps) for cls in range(model.num_classes)], dim=1))
    if not parts:
        return np.zeros((0, model.num_classes))
    return torch.cat(parts).double().numpy()
