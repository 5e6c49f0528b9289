"""The report's "Label audit" section: the top of each review queue as picture grids, and the counts.

Two grids in one figure, one per question: the likely wrong labels (`label_rank`) and the images
no label explains (`outlier_rank`); shown apart, neither kind hides the other. Each tile is titled
`given -> suggested` (the label the VAE finds likelier) or `given: outlier` (a `?`: not flagged), so
a reader can judge the flag by eye; the numbers come from the audit stage's metrics file.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt

from pipeline.audit.table import Suspects, read_suspects
from pipeline.reporting.charts import save_figure

COLUMNS = 8
QUEUE_TITLES = {
    "label_rank": "Likely wrong labels (label_rank), largest margin first",
    "outlier_rank": "Explained by no label (outlier_rank), largest outlier score first",
}


def tile_title(given: str, suggested: str, label_flag: bool, outlier_flag: bool) -> str:
    if outlier_flag and not label_flag:
        return f"{given}: outlier"
    return f"{given} -> {suggested}" + ("?" if not label_flag else "")


def outlier_title(given: str, outlier_flag: bool) -> str:
    """A tile of the outlier queue: its label matters less than whether it is flagged."""
    return f"{given}: outlier" + ("" if outlier_flag else "?")


def _draw_grid(fig: plt.Figure, suspects: Suspects, rows: int, cols: int, by: str) -> None:
    """Tiles of queue `by`, read left to right, on (sub)figure `fig`."""
    for i, ax in enumerate(fig.subplots(rows, cols, squeeze=False).flat):
        ax.axis("off")
        if i >= len(suspects.images):
            continue
        image = suspects.images[i]
        ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        if by == "outlier_rank":
            title = outlier_title(suspects.label_names[i], bool(suspects.outlier_flag[i]))
        else:
            title = tile_title(suspects.label_names[i], suspects.suspect_names[i], bool(suspects.label_flag[i]), bool(suspects.outlier_flag[i]))
        ax.set_title(f"{i + 1}. {title}\n({suspects.split[i]})", fontsize=7)


def suspects_figure(queues: dict[str, Suspects], path: Path) -> None:
    """One grid per queue ({column: its top suspects}), each under its title."""
    n = max([len(s.images) for s in queues.values()] + [1])
    rows, cols = math.ceil(n / COLUMNS), min(n, COLUMNS)
    fig = plt.figure(figsize=(1.25 * cols, (1.45 * rows + 0.35) * len(queues)))
    for sub, (by, suspects) in zip(fig.subfigures(len(queues), 1, squeeze=False).flat, queues.items()):
        sub.suptitle(QUEUE_TITLES.get(by, by), fontsize=9)
        _draw_grid(sub, suspects, rows, cols, by)
    save_figure(fig, path)


def audit_context(metrics: dict, shown: int) -> dict:
    """What the template's audit section prints, from `reports/audit.json`."""
    images = metrics["images"]["all"]

    def pct(count: int) -> str:
        return f"{100 * count / images:.1f}" if images else "n/a"

    return {
        **metrics,
        "shown": shown,
        "split_counts": ", ".join(f"{n} {name}" for name, n in metrics["images"].items() if name != "all"),
        "agreement_pct": {k: f"{100 * v:.0f}" for k, v in metrics["agreement"].items()},
        "flagged_label_pct": pct(metrics["flagged_label"]["all"]),
        "flagged_outlier_pct": pct(metrics["flagged_outlier"]["all"]),
        "expected_clean_pct": f"{100 * metrics['expected_clean_flag_share']:.1f}",
    }


def audit_section(audit_path: Path, metrics: dict, top: int, fig_path: Path) -> dict:
    """Draw the top `top` of each queue; the template's `audit` context."""
    queues = {by: read_suspects(audit_path, top, by) for by in QUEUE_TITLES}
    suspects_figure(queues, fig_path)
    return audit_context(metrics, max(len(s.images) for s in queues.values()))
