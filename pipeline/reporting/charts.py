"""Charts of numbers (learning curves, gains, training curves): matplotlib only, no torch.

Kept apart from `figures.py` (which draws with the VAE) so tools such as `compare` start fast.
PNGs are written without a `Software` tag or timestamps: the same numbers give the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

from pipeline.atomic import atomic_path  # noqa: E402
from pipeline.evaluation.arms import BY_NAME, FULL  # noqa: E402


def save_figure(fig: plt.Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)


def size_accuracy_axes(ax: plt.Axes, sizes: list[int]) -> None:
    """Training size on a log axis with a tick per measured size, accuracy in percent."""
    ax.set_xscale("log")
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("real training images per class")
    ax.set_ylabel("test accuracy (%)")


def learning_curve(metrics: dict, sizes: list[int], arms: list[str], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for arm in arms:
        mean = np.array([metrics[f"n{s}"][arm]["acc_mean"] for s in sizes]) * 100
        lo = np.array([_nan(metrics[f"n{s}"][arm]["acc_lo"]) for s in sizes]) * 100
        hi = np.array([_nan(metrics[f"n{s}"][arm]["acc_hi"]) for s in sizes]) * 100
        ax.plot(sizes, mean, marker="o", color=BY_NAME[arm].colour, label=BY_NAME[arm].label)
        ax.fill_between(sizes, lo, hi, color=BY_NAME[arm].colour, alpha=0.15)
    full = metrics["full"]["acc_mean"] * 100
    ax.axhline(full, color=FULL.colour, linestyle="--", label=FULL.label)
    size_accuracy_axes(ax, sizes)
    ax.set_title("Learning curve (mean over seeds, band = 95% CI)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    save_figure(fig, path)


def gains(
    metrics: dict, sizes: list[int], arms: list[str], path: Path,
    ylabel: str = "accuracy gain over real only (points)",
    title: str = "Gain over training on real images alone (95% CI of the paired difference)",
) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(arms)
    x = np.arange(len(sizes))
    for i, arm in enumerate(arms):
        block = [metrics[f"n{s}"][arm] for s in sizes]
        mean = np.array([b["gain_mean"] for b in block]) * 100
        err = np.array([[m - _nan(b["gain_lo"]) * 100, _nan(b["gain_hi"]) * 100 - m] for m, b in zip(mean, block)]).T
        ax.bar(x + (i - (len(arms) - 1) / 2) * width, mean, width, yerr=err, capsize=3, color=BY_NAME[arm].colour, label=BY_NAME[arm].label)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, [str(s) for s in sizes])
    ax.set_xlabel("real training images per class")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
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
        ax.set_ylabel("per image")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def _nan(value: float | None) -> float:
    return float("nan") if value is None else value
