"""The report's picture figures, drawn with the trained VAE: samples, reconstructions, latents."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image

from pipeline.atomic import atomic_path
from pipeline.data.images import auto_scale, tensor_to_uint8, tile
from pipeline.data.imageset import ImageSet
from pipeline.models.cvae import CVAE
from pipeline.reporting.charts import save_figure


def save_picture(picture: Image.Image, path: Path) -> None:
    with atomic_path(path) as tmp:
        picture.save(tmp, format="PNG")


def real_vs_synthetic(real: ImageSet, synthetic: ImageSet, path: Path, per_class: int = 6) -> None:
    """One row per class: `per_class` real images, a gap, then `per_class` synthetic ones."""
    blank = np.full_like(real.images[0], 255)
    rows = []
    for cls in range(real.num_classes):
        r = list(real.images[real.labels == cls][:per_class])
        s = list(synthetic.images[synthetic.labels == cls][:per_class])
        rows.append(_pad(r, per_class, blank) + [blank] + _pad(s, per_class, blank))
    save_picture(tile(rows, scale=auto_scale(real.images.shape[1])), path)


def reconstructions(model: CVAE, data: ImageSet, path: Path, n: int = 12) -> None:
    """Top row originals, bottom row their reconstructions (posterior mean)."""
    pick = np.linspace(0, len(data) - 1, n).astype(int)
    x = torch.from_numpy(data.subset(pick).as_float())
    y = torch.from_numpy(data.labels[pick])
    mu, _ = model.encode(x, y)
    rows = [list(data.images[pick]), list(tensor_to_uint8(model.decode(mu, y)))]
    save_picture(tile(rows, scale=auto_scale(data.images.shape[1])), path)


def latent_map(model: CVAE, data: ImageSet, path: Path) -> None:
    """Latent means projected to 2-D with PCA, coloured by class: does the VAE separate classes?"""
    mu, _ = model.encode(torch.from_numpy(data.as_float()), torch.from_numpy(data.labels))
    mu = mu.numpy() - mu.numpy().mean(0)
    _, _, vt = np.linalg.svd(mu, full_matrices=False)
    xy = mu @ vt[:2].T
    fig, ax = plt.subplots(figsize=(5.5, 5))
    cmap = plt.get_cmap("tab10" if data.num_classes <= 10 else "tab20")
    for cls in range(data.num_classes):
        sel = data.labels == cls
        ax.scatter(xy[sel, 0], xy[sel, 1], s=10, color=cmap(cls % cmap.N), label=data.class_names[cls])
    ax.set_xlabel("latent PC 1")
    ax.set_ylabel("latent PC 2")
    ax.set_title("Latent means of validation images (PCA)")
    ax.legend(fontsize=7, markerscale=1.5, ncol=2)
    save_figure(fig, path)


def interpolations(model: CVAE, data: ImageSet, path: Path, steps: int = 10) -> None:
    """Per class, a strip from one training image's latent to another's."""
    rows = []
    for cls in range(data.num_classes):
        members = data.subset(data.labels == cls)
        if len(members) < 2:
            continue
        y = torch.full((2,), cls, dtype=torch.long)
        mu, _ = model.encode(torch.from_numpy(members.subset(np.array([0, 1])).as_float()), y)
        alphas = torch.linspace(0, 1, steps)[:, None]
        z = (1 - alphas) * mu[0] + alphas * mu[1]
        rows.append(list(tensor_to_uint8(model.decode(z, torch.full((steps,), cls, dtype=torch.long)))))
    if rows:
        save_picture(tile(rows, scale=auto_scale(data.images.shape[1])), path)


def _pad(images: list[np.ndarray], n: int, blank: np.ndarray) -> list[np.ndarray]:
    return images + [blank] * (n - len(images))
