"""The report's "Label audit" section: the top suspects as a picture grid, and the counts.

Each tile is titled `given -> suggested` (the label the VAE finds likelier) or `given: outlier`,
so a reader can judge the flag by eye; the numbers come from the audit stage's metrics file.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt

from pipeline.audit.table import Suspects, read_suspects
from pipeline.reporting.charts import save_figure

COLUMNS = 8


def tile_title(given: str, suggested: str, label_flag: bool, outlier_flag: bool) -> str:
    if outlier_flag and not label_flag:
        return f"{given}: outlier"
    return f"{given} -> {suggested}" + ("?" if not label_flag else "")


def suspects_figure(suspects: Suspects, path: Path) -> None:
    """A grid of the suspects, most suspect first, read left to right."""
    n = max(len(suspects.images), 1)
    rows, cols = math.ceil(n / COLUMNS), min(n, COLUMNS)
    fig, axes = plt.subplots(rows, cols, figsize=(1.25 * cols, 1.45 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= len(suspects.images):
            continue
        image = suspects.images[i]
        ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        title = tile_title(suspects.label_names[i], suspects.suspect_names[i], bool(suspects.label_flag[i]), bool(suspects.outlier_flag[i]))
        ax.set_title(f"{i + 1}. {title}\n({suspects.split[i]})", fontsize=7)
    save_figure(fig, path)


def audit_context(metrics: dict, shown: int) -> dict:
    """What the template's audit section prints, from `reports/audit.json`."""
    return {
        **metrics,
        "shown": shown,
        "agreement_pct": {k: "n/a" if v is None else f"{100 * v:.0f}" for k, v in metrics["agreement"].items()},
    }


def audit_section(audit_path: Path, metrics: dict, top: int, fig_path: Path) -> dict:
    """Draw the suspects figure; the template's `audit` context."""
    suspects = read_suspects(audit_path, top)
    suspects_figure(suspects, fig_path)
    return audit_context(metrics, len(suspects.images))
