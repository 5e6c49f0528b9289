"""Report tables of the `auto` search: what was chosen on `val`, and what every tried value scored.

The second table is the ablation: for each knob value the search tried, its validation accuracy
minus that of the arm's baseline (real only for real+VAE, real+classic for real+classic+VAE),
averaged over the seeds that tried it. Numbers are on `val`, the split the choice is made on;
`test` numbers exist only for the chosen settings (the learning-curve tables).
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from pipeline.evaluation.arms import BY_NAME, VAE_ARMS
from pipeline.evaluation.selection import CANDIDATES, describe, show_value



def _has_selection(cells: list[dict]) -> bool:
    return bool(cells) and all("selection" in c for c in cells)


def chosen_table(cells: list[dict]) -> str:
    """Per size and VAE arm: the settings chosen (and in how many seeds), val accuracy gained."""
    if not _has_selection(cells):
        return "No selection was recorded for this run."
    lines = ["| images per class | arm | chosen on val (seeds) | val gain over baseline (points) |", "|---|---|---|---|"]
    for size in sorted({c["size"] for c in cells}):
        group = [c for c in cells if c["size"] == size]
        for arm in VAE_ARMS:
            counts = Counter(describe(c["selection"][arm.name]["chosen"]) for c in group)
            chosen = "; ".join(f"{text} ({n})" for text, n in counts.most_common())
            gain = np.mean([c["selection"][arm.name]["val_acc"] - c["val_acc"][arm.extends] for c in group])
            lines.append(f"| {size} | {arm.label} | {chosen} | {gain * 100:+.1f} |")
    return "\n".join(lines)


def ablation_table(cells: list[dict], arm: str) -> str:
    """Rows: every knob value tried; columns: sizes; cells: mean val gain over the baseline."""
    if not _has_selection(cells):
        return ""
    baseline = BY_NAME[arm].extends
    sizes = sorted({c["size"] for c in cells})
    gains: dict[tuple[str, str], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for cell in cells:
        for step in cell["selection"][arm]["trace"]:
            if step["val_acc"] is None:  # the filter left no samples: nothing to score
                continue
            row = ("start", describe(step["setting"])) if step["knob"] == "start" else (step["knob"], show_value(step["value"]))
            gains[row][cell["size"]].append(step["val_acc"] - cell["val_acc"][baseline])

    def position(row: tuple[str, str]) -> tuple[int, int]:
        """Search order: the start, then each knob's candidates in the order they are tried."""
        knob, value = row
        if knob == "start":
            return (0, 0)
        shown = [show_value(v) for v in CANDIDATES.get(knob, ())]
        return (1 + list(CANDIDATES).index(knob), shown.index(value) if value in shown else len(shown))

    lines = ["| tried | " + " | ".join(f"n={s}" for s in sizes) + " |", "|---" * (len(sizes) + 1) + "|"]
    for knob, value in sorted(gains, key=position):
        by_size = gains[(knob, value)]
        name = f"start: {value}" if knob == "start" else f"{knob} = {value}"
        cells_text = [f"{np.mean(by_size[s]) * 100:+.1f} ({len(by_size[s])})" if by_size.get(s) else "—" for s in sizes]
        lines.append(f"| {name} | " + " | ".join(cells_text) + " |")
    return "\n".join(lines)
