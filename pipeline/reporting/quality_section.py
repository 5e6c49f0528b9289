"""The report's sample-quality parts: what each metric means and which way is good, and which
metric tracks the val gain of the tried sampling settings (table, sentence, scatter figure)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from pipeline.evaluation.arms import colour, label
from pipeline.evaluation.quality_gain import pooled_points
from pipeline.reporting.charts import save_figure

# metric -> (name, what it measures, the good direction): one line each in the quality table.
QUALITY_INFO: dict[str, tuple[str, str, str]] = {
    "label_fidelity": ("label fidelity", "share of samples the assessor puts in their conditioned class", "higher"),
    "assessor_accuracy": ("real images' fidelity", "the same share for held-out real images: the assessor's accuracy, fidelity's ceiling", "reference"),
    "fd": ("Fréchet distance", "distance between Gaussians fitted to sample and real features", "lower"),
    "precision": ("precision", "share of samples inside the real images' k-NN balls (realism)", "higher"),
    "recall": ("recall", "share of real images inside the samples' k-NN balls (variety covered)", "higher"),
    "density": ("density", "real k-NN balls holding a sample, per sample, / k (1: as dense as real)", "near 1"),
    "coverage": ("coverage", "share of real images whose k-NN ball holds a sample", "higher"),
    "diversity_ratio": ("diversity ratio", "spread of a class's samples over that of its real images", "near 1"),
    "memorisation_ratio": ("memorisation ratio", "pixel distance to the nearest training image, samples over new real images", "1 or more"),
    "near_copy_rate": ("near-copy rate", "share of samples closer to a training image than 99% of new real images are", "lower"),
    "detection_auroc": ("detection AUROC", "how well a cross-validated linear discriminant tells samples from real images", "near 0.5"),
    "alpha_precision": ("α-precision", "samples in the real α-support, against α (Alaa et al. 2022; 1: on the diagonal)", "higher"),
    "beta_recall": ("β-recall", "real images with a sample nearby in the samples' β-support, against β", "higher"),
    "authenticity": ("authenticity", "share of samples farther from their nearest training image than its own neighbour is (new real images: ~0.5-0.7)", "higher"),
    "identifiability": ("identifiability", "share of samples closer to the training images than any held-out real image of the class", "lower"),
}


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def quality_table(metrics: dict, sizes: list[int]) -> str:
    """One row per metric: its meaning, the good direction, its mean over seeds at every size."""
    lines = ["| metric | what it measures | better | " + " | ".join(f"{s} per class" for s in sizes) + " |",
             "|---|---|---|" + "---|" * len(sizes)]
    for key, (name, meaning, better) in QUALITY_INFO.items():
        values = [metrics[f"n{s}"]["quality"].get(key) for s in sizes]
        lines.append(f"| {name} | {meaning} | {better} | " + " | ".join(_fmt(v, 2 if key == "fd" else 3) for v in values) + " |")
    return "\n".join(lines)


def _rho(entry: dict) -> str:
    mean, lo, hi = (entry.get(k) for k in ("spearman_mean", "spearman_lo", "spearman_hi"))
    if mean is None or math.isnan(mean):
        return "n/a"
    if lo is None or math.isnan(lo):
        return f"{mean:+.2f}"
    return f"{mean:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def gain_table(qvg: dict) -> str:
    """Per metric: the mean over cells of Spearman's rho with the val gain, its bootstrap interval."""
    lines = ["| metric | better | Spearman ρ with the val gain [95% CI over cells] | cells |", "|---|---|---|---|"]
    for key, entry in _ordered(qvg).items():
        name, _, better = QUALITY_INFO.get(key, (key, "", ""))
        lines.append(f"| {name} | {better} | {_rho(entry)} | {entry.get('cells', 0)} |")
    return "\n".join(lines)


def _ordered(qvg: dict) -> dict:
    """The metrics in the quality table's order (JSON files keep them sorted by key)."""
    return {**{k: qvg[k] for k in QUALITY_INFO if k in qvg}, **{k: v for k, v in qvg.items() if k not in QUALITY_INFO}}


def _excludes_zero(entry: dict) -> bool:
    lo, hi = entry.get("spearman_lo"), entry.get("spearman_hi")
    return lo is not None and hi is not None and not math.isnan(lo) and (lo > 0 or hi < 0)


def _phrase(key: str, entry: dict) -> str:
    name = QUALITY_INFO.get(key, (key,))[0]
    mean, lo, hi = entry["spearman_mean"], entry.get("spearman_lo"), entry.get("spearman_hi")
    ci = "" if lo is None or math.isnan(lo) else f", 95% CI {lo:+.2f} to {hi:+.2f}"
    return f"{name} (ρ = {mean:+.2f}{ci})"


def gain_sentence(qvg: dict) -> str:
    """Which metric tracks the val gain of the tried settings, and which does not, from the table."""
    most = max((e.get("cells", 0) for e in qvg.values()), default=0)
    # a metric defined in only a few cells (it rarely varied) is not compared with the others
    known = {k: e for k, e in qvg.items() if e.get("spearman_mean") is not None and not math.isnan(e["spearman_mean"])
             and 2 * e.get("cells", 0) >= most}
    if not known:
        return "No metric varied enough between the tried settings to rank them against the val gain."
    tracking = {k: e for k, e in known.items() if _excludes_zero(e)}
    strongest = max(tracking or known, key=lambda k: abs(known[k]["spearman_mean"]))
    weakest = min(known, key=lambda k: abs(known[k]["spearman_mean"]))
    way = "the higher it is" if known[strongest]["spearman_mean"] > 0 else "the lower it is"
    if tracking:
        others = len(tracking) - 1
        text = (f"On this data the metric that best tracks whether a sampling setting helps is {_phrase(strongest, known[strongest])}: "
                f"{way}, the larger the val gain" + (f" ({others} other metric{'s' if others != 1 else ''} also track{'s' if others == 1 else ''} it)" if others else "") + ". ")
    else:
        text = (f"On this data no metric tracks whether a sampling setting helps: every interval includes 0; "
                f"the strongest is {_phrase(strongest, known[strongest])}. ")
    if weakest == strongest:
        return text.rstrip()
    return text + f"The weakest is {_phrase(weakest, known[weakest])}: it does not track the gain."


def gain_figure(cells: list[dict], qvg: dict, path: Path) -> bool:
    """One small scatter per metric: each tried setting's val gain (points) against the metric,
    coloured by VAE arm. False (nothing drawn) when the run has no scored tries."""
    points = pooled_points(cells)
    keys = [k for k in _ordered(qvg) if any(p["quality"].get(k) is not None for p in points)]
    if not points or not keys:
        return False
    cols = 5
    rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.3 * rows), sharey=True, squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for arm in dict.fromkeys(p["arm"] for p in points):
            mine = [p for p in points if p["arm"] == arm and p["quality"].get(key) is not None]
            ax.scatter([p["quality"][key] for p in mine], [100 * p["gain"] for p in mine], s=6, alpha=0.5,
                       color=colour(arm, "#555555"), label=label(arm))
        ax.axhline(0.0, color="#999999", linewidth=0.6)
        ax.set_title(f"{QUALITY_INFO.get(key, (key,))[0]} (ρ {_rho(qvg[key]).split(' ')[0]})", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(4))
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("val gain (points)", fontsize=8)
    axes.flat[0].legend(fontsize=6, markerscale=2, loc="lower left")
    fig.tight_layout()
    save_figure(fig, path)
    return True


def context(metrics: dict, cells: list[dict]) -> dict | None:
    """The template's `quality_gain`: None for a run without scored tries (an older run)."""
    qvg = metrics.get("quality_vs_gain")
    if not qvg:
        return None
    return {"table": gain_table(qvg), "sentence": gain_sentence(qvg), "cells": max((e.get("cells", 0) for e in qvg.values()), default=0)}


def per_class_table(cells: list[dict], size: int, class_names: list[str]) -> str:
    """The suite's metrics within each class at one size, mean over seeds; "" for a run without
    per-class values (an older run)."""
    group = [c["quality"]["per_class"] for c in cells if c["size"] == size and "per_class" in c.get("quality", {})]
    if not group:
        return ""
    keys = [k for k in QUALITY_INFO if k in group[0]]
    lines = ["| class | " + " | ".join(QUALITY_INFO[k][0] for k in keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for i, name in enumerate(class_names):
        lines.append(f"| {name} | " + " | ".join(_fmt(_mean([g[k][i] for g in group if i < len(g[k])])) for k in keys) + " |")
    return "\n".join(lines)


def _mean(values: list[float | None]) -> float:
    finite = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")
