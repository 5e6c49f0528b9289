"""A class-conditional convolutional VAE that sizes itself to the images.

The label conditions both halves through a learned embedding: the encoder sees it as an extra
input channel, the decoder as part of its input vector. The number of stride-2 stages follows the
image size (8x8 gets one, 64x64 four) so one class serves every size from 8 to 64 pixels. Larger
images start narrower (`first_width`): every stride-2 stage then costs about the same, and the
bottleneck is as wide as at 8x8, so a 28x28 VAE costs ~4x less than with `hidden` channels at full
resolution (the learning curve trains one per cell) for a model of the same shape.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models.conv import Conv2d, ConvTranspose2d

CHANNELS_LAST_FROM = 16  # images this large train ~10-25% and decode ~1.7x faster channels-last (CPU)


def num_downsamples(height: int, width: int) -> int:
    """Halve until the feature map is about 4 pixels on its short side."""
    return max(1, int(math.floor(math.log2(min(height, width) / 4))))


def first_width(hidden: int, n_down: int) -> int:
    """Channels of the full-resolution layers: `hidden` at one downsampling (8x8), halved for each
    further stage so the bottleneck keeps `2 * hidden` channels (at least 4 channels)."""
    return max(4, hidden // 2 ** (n_down - 1))


class Encoder(nn.Module):
    def __init__(self, channels: int, height: int, width: int, num_classes: int, hidden: int, latent_dim: int):
        super().__init__()
        self.height, self.width = height, width
        self.label_map = nn.Embedding(num_classes, height * width)
        n_down = num_downsamples(height, width)
        width_ch = first_width(hidden, n_down)
        layers: list[nn.Module] = [Conv2d(channels + 1, width_ch, 3, padding=1), nn.SiLU()]
        for _ in range(n_down):
            layers += [Conv2d(width_ch, width_ch * 2, 4, stride=2, padding=1), nn.SiLU()]
            width_ch *= 2
        self.features = nn.Sequential(*layers)
        with torch.no_grad():
            flat = self.features(torch.zeros(1, channels + 1, height, width)).numel()
        self.to_stats = nn.Linear(flat, 2 * latent_dim)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        label = self.label_map(y).view(-1, 1, self.height, self.width)  # (B, 1, H, W)
        h = self.features(torch.cat([x, label], dim=1)).flatten(1)
        mu, logvar = self.to_stats(h).chunk(2, dim=1)
        return mu, logvar.clamp(-10.0, 10.0)


class Decoder(nn.Module):
    def __init__(self, channels: int, height: int, width: int, num_classes: int, hidden: int, latent_dim: int, embed_dim: int):
        super().__init__()
        self.height, self.width = height, width
        n_down = num_downsamples(height, width)
        self.start_ch = first_width(hidden, n_down) * 2**n_down
        self.start_hw = (math.ceil(height / 2**n_down), math.ceil(width / 2**n_down))
        self.label_embed = nn.Embedding(num_classes, embed_dim)
        self.from_latent = nn.Linear(latent_dim + embed_dim, self.start_ch * self.start_hw[0] * self.start_hw[1])
        layers: list[nn.Module] = []
        ch = self.start_ch
        for _ in range(n_down):
            layers += [nn.SiLU(), ConvTranspose2d(ch, ch // 2, 4, stride=2, padding=1)]
            ch //= 2
        layers += [nn.SiLU(), Conv2d(ch, channels, 3, padding=1)]
        self.upsample = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Pixel logits (B, C, H, W); sigmoid gives intensities in [0, 1]."""
        h = self.from_latent(torch.cat([z, self.label_embed(y)], dim=1))
        h = h.view(-1, self.start_ch, *self.start_hw)
        logits = self.upsample(h)
        if logits.shape[-2:] != (self.height, self.width):  # odd sizes: 28 -> 7 -> 28 is exact, 9 is not
            logits = F.interpolate(logits, size=(self.height, self.width), mode="bilinear", align_corners=False)
        return logits


class CVAE(nn.Module):
    def __init__(
        self,
        channels: int,
        height: int,
        width: int,
        num_classes: int,
        latent_dim: int = 16,
        hidden: int = 32,
        likelihood: str = "bernoulli",
    ):
        super().__init__()
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.likelihood = likelihood
        self.encoder = Encoder(channels, height, width, num_classes, hidden, latent_dim)
        self.decoder = Decoder(channels, height, width, num_classes, hidden, latent_dim, embed_dim=latent_dim)
        # Gaussian likelihood learns one global scale (the "sigma-VAE"): no noise level to tune.
        self.log_sigma = nn.Parameter(torch.zeros(())) if likelihood == "gaussian" else None
        if min(height, width) >= CHANNELS_LAST_FROM:
            self.to(memory_format=torch.channels_last)  # convs then run in that layout, inputs too

    def forward(self, x: torch.Tensor, y: torch.Tensor):
        mu, logvar = self.encoder(x, y)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decoder(z, y), mu, logvar

    def loss_terms(self, x: torch.Tensor, y: torch.Tensor, per_dim: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image reconstruction NLL (B,) summed over pixels, and KL summed over latents (B,),
        or per latent dimension (B, D) with `per_dim` (what free bits need)."""
        logits, mu, logvar = self(x, y)
        if self.likelihood == "bernoulli":
            recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        else:
            mean = torch.sigmoid(logits)
            recon = 0.5 * ((x - mean) / self.log_sigma.exp()) ** 2 + self.log_sigma + 0.5 * math.log(2 * math.pi)
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())
        return recon.flatten(1).sum(1), kl if per_dim else kl.sum(1)

    @torch.no_grad()
    def decode(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean image in [0, 1], (B, C, H, W)."""
        return torch.sigmoid(self.decoder(z, y))

    @torch.no_grad()
    def encode(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x, y)
