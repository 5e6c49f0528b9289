"""The downstream classifiers: a small CNN sized to the images, and logistic regression.

The CNN's penultimate layer doubles as the feature space for the synthetic-data quality metrics
(Fréchet distance, precision/recall): a network trained on the real training images only, so no
downloaded feature extractor is needed.
"""

from __future__ import annotations

import pytorch_lightning as pl
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


class LitClassifier(pl.LightningModule):
    """Cross-entropy with a per-sample weight, so synthetic rows can count less than real ones."""

    def __init__(self, channels: int, num_classes: int, lr: float = 3e-3, epochs: int = 40) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = SmallCNN(channels, num_classes)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y, w = batch
        loss = (F.cross_entropy(self.net(x), y, reduction="none") * w).sum() / w.sum()
        return loss

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=1e-4)
        return optimizer

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor, batch_size: int = 2048) -> torch.Tensor:
        self.eval()
        return torch.cat([F.softmax(self.net(x[i : i + batch_size]), 1) for i in range(0, len(x), batch_size)])

    @torch.no_grad()
    def features(self, x: torch.Tensor, batch_size: int = 2048) -> torch.Tensor:
        self.eval()
        return torch.cat([self.net.features(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
