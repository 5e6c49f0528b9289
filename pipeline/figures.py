"""The report's figures, each a function from numbers or images to a PNG file.

PNGs are written without a `Software` tag or timestamps, so the same results give the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from pipeline.atomic import atomic_path  # noqa: E402
from pipeline.grids import auto_scale, tile, to_uint8  # noqa: E402
from pipeline.imageset import ImageSet  # noqa: E402
from pipeline.models.cvae import CVAE  # noqa: E402

ARM_LABELS = {
    "real": "real only",
    "real_classic": "real + classic aug.",
    "real_vae": "real + VAE samples",
    "real_classic_vae": "real + classic + VAE",
    "synthetic_only": "VAE samples only",
    "full": "whole pool + classic (upper bound)",
}
ARM_COLORS = {"real": "#444444", "real_classic": "#1f77b4", "real_vae": "#d62728", "real_classic_vae": "#9467bd", "synthetic_only": "#ff7f0e", "full": "#2ca02c"}


def save_figure(fig: plt.Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)


def save_picture(picture: Image.Image, path: Path) -> None:
    with atomic_path(path) as tmp:
        picture.save(tmp, format="PNG")


def learning_curve(metrics: dict, sizes: list[int], arms: list[str], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for arm in arms:
        mean = np.array([metrics[f"n{s}"][arm]["acc_mean"] for s in sizes]) * 100
        lo = np.array([_nan(metrics[f"n{s}"][arm]["acc_lo"]) for s in sizes]) * 100
        hi = np.array([_nan(metrics[f"n{s}"][arm]["acc_hi"]) for s in sizes]) * 100
        ax.plot(sizes, mean, marker="o", color=ARM_COLORS[arm], label=ARM_LABELS[arm])
        ax.fill_between(sizes, lo, hi, color=ARM_COLORS[arm], alpha=0.15)
    full = metrics["full"]["acc_mean"] * 100
    ax.axhline(full, color=ARM_COLORS["full"], linestyle="--", label=ARM_LABELS["full"])
    ax.set_xscale("log")
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("real training images per class")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Learning curve (mean over seeds, band = 95% CI)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    save_figure(fig, path)


def gains(metrics: dict, sizes: list[int], arms: list[str], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(arms)
    x = np.arange(len(sizes))
    for i, arm in enumerate(arms):
        block = [metrics[f"n{s}"][arm] for s in sizes]
        mean = np.array([b["gain_mean"] for b in block]) * 100
        err = np.array([[m - _nan(b["gain_lo"]) * 100, _nan(b["gain_hi"]) * 100 - m] for m, b in zip(mean, block)]).T
        ax.bar(x + (i - (len(arms) - 1) / 2) * width, mean, width, yerr=err, capsize=3, color=ARM_COLORS[arm], label=ARM_LABELS[arm])
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, [str(s) for s in sizes])
    ax.set_xlabel("real training images per class")
    ax.set_ylabel("accuracy gain over real only (points)")
    ax.set_title("Gain over training on real images alone (95% CI of the paired difference)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)


def training_curves(series: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> None:
    """series: name -> (epochs, values) of the VAE's ELBO terms."""
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for ax, term in zip(axes, ("elbo", "recon", "kl")):
        for split, style in (("train", "-"), ("val", "o-")):
            if f"{split}/{term}" in series:
                epochs, values = series[f"{split}/{term}"]
                ax.plot(epochs, values, style, markersize=3, label=split)
        ax.set_title({"elbo": "ELBO (higher is better)", "recon": "reconstruction NLL", "kl": "KL divergence"}[term])
        ax.set_xlabel("epoch")
        ax.set_ylabel("nats per image")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


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
    rows = [list(data.images[pick]), list(to_uint8(model.decode(mu, y)))]
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
        rows.append(list(to_uint8(model.decode(z, torch.full((steps,), cls, dtype=torch.long)))))
    if rows:
        save_picture(tile(rows, scale=auto_scale(data.images.shape[1])), path)


def _pad(images: list[np.ndarray], n: int, blank: np.ndarray) -> list[np.ndarray]:
    return images + [blank] * (n - len(images))


def _nan(value: float | None) -> float:
    return float("nan") if value is None else value
