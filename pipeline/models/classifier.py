"""The downstream CNN: small, sized to the images, trained many at a time (`batched.py`).

Its penultimate layer doubles as the feature space for the synthetic-data quality metrics
(Fréchet distance, precision/recall): a network trained on real images, so no downloaded
feature extractor is needed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models.conv import Conv2d

FEATURE_DIM = 128
DROPOUT = 0.25
EARLY_POOL_FROM = 8  # feature maps at least this tall and wide are pooled to 4x4 before the second conv
MAX_INPUT_SIDE = 16  # larger images are averaged down by 2 until no side exceeds this


def shrink_input(x: torch.Tensor) -> torch.Tensor:
    """Average larger images down by 2 until no side exceeds 16 pixels (28 -> 14, 64 -> 16).

    The first conv and its pooling ran at full resolution: at 28x28 their backward pass and the
    zero-filled pooling gradients were most of a fit. Averaging has no weights, so nothing
    is learnt at the lost resolution anyway; 8x8 digits pass unchanged."""
    while max(x.shape[-2:]) > MAX_INPUT_SIDE:
        x = F.avg_pool2d(x, 2, ceil_mode=True)
    return x


def input_size(height: int, width: int) -> tuple[int, int]:
    """The image size the CNN's first conv runs at (`shrink_input`)."""
    while max(height, width) > MAX_INPUT_SIDE:
        height, width = -(-height // 2), -(-width // 2)
    return height, width


def early_pool(x: torch.Tensor) -> torch.Tensor:
    """Max-pool the first conv's feature maps of 8 pixels or more to 4x4 (8x8 as one halving
    would, 16x16 as two; 14x14, from a 28x28 image, in overlapping windows): the second conv then
    runs at 4x4 for any image size. At full 28x28 resolution it cost ~280 GFLOP per 100-step fit,
    at 7x7 still more than twice the rest of the model; at 4x4 a fraction of that, for a small
    cost in accuracy that every arm shares."""
    return F.adaptive_max_pool2d(x, 4) if min(x.shape[-2:]) >= EARLY_POOL_FROM else x


def pooled_size(height: int, width: int) -> tuple[int, int]:
    """The feature-map size `early_pool` leaves (what the second conv runs at)."""
    return (4, 4) if min(height, width) >= EARLY_POOL_FROM else (height, width)


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
            Conv2d(channels, width, 3, padding=1), PoolReLU(),
            Conv2d(width, 2 * width, 3, padding=1),
            nn.AdaptiveMaxPool2d(4), nn.ReLU(),  # 8x8 digits and 64x64 photos alike end as (B, 2w, 4, 4)
            nn.Flatten(),
            nn.Dropout(DROPOUT),
            nn.Linear(2 * width * 16, FEATURE_DIM), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(DROPOUT), nn.Linear(FEATURE_DIM, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(shrink_input(x)))

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(shrink_input(x))
