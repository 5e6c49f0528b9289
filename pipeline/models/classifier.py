"""The downstream CNN: small, sized to the images, trained many at a time (`batched.py`).

Its penultimate layer doubles as the feature space for the synthetic-data quality metrics
(Fréchet distance, precision/recall): a network trained on real images, so no downloaded
feature extractor is needed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FEATURE_DIM = 128
DROPOUT = 0.25
EARLY_POOL_FROM = 8  # feature maps at least this tall and wide are halved before the second conv


def early_pool(x: torch.Tensor) -> torch.Tensor:
    """Halve large feature maps after the first conv: at full 28x28 resolution the second conv cost
    ~280 GFLOP per 100-step fit and at 8x8 it is three quarters of the model's work; after the pool
    a quarter of that, for a small cost in accuracy that every arm shares."""
    return F.max_pool2d(x, 2) if min(x.shape[-2:]) >= EARLY_POOL_FROM else x


class PoolReLU(nn.Module):
    """`early_pool`, then ReLU: one module, so the layers keep their old `state_dict` names."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return early_pool(x).relu()


class SmallCNN(nn.Module):
    """Two 3x3 convs, max-pooled to 4x4 whatever the image size, then two linear layers.

    `pipeline.models.batched` trains many of these at once with the same arithmetic; a test there
    checks that its stacked forward pass equals this one."""

    def __init__(self, channels: int, num_classes: int, width: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(
            # Each ReLU follows its max-pool: the same values (both are monotone), less work.
            nn.Conv2d(channels, width, 3, padding=1), PoolReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.AdaptiveMaxPool2d(4), nn.ReLU(),  # 8x8 digits and 64x64 photos alike end as (B, 2w, 4, 4)
            nn.Flatten(),
            nn.Dropout(DROPOUT),
            nn.Linear(2 * width * 16, FEATURE_DIM), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(DROPOUT), nn.Linear(FEATURE_DIM, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
