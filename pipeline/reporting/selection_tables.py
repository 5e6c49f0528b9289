"""Report tables of the tuning on `val`: what each arm chose, and what every tried value scored.

Numbers are on `val`, the split the choices are made on; `test` numbers exist only for the chosen
settings (the learning-curve tables).
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from pipeline.evaluation.arms import ARMS, BY_NAME, Arm, label
from pipeline.evaluation.selection import describe, show_value


def picks(cells: list[dict], size: int, kind: str) -> str:
    """'class re-weighting 4, logit adjustment 3, ...': which arm of a `kind` (`best_by_val` key of
    the cells) was chosen on val, counted over the seeds of a size."""
    counts = Counter(c["best_by_val"][kind] for c in cells if c["size"] == size)
    return ", ".join(f"{label(name)} {n}" for name, n in counts.most_common())


def _has_selection(cells: list[dict]) -> bool:
    return bool(cells) and all("selection" in c for c in cells)


def chosen_table(cells: list[dict], arms: tuple[Arm, ...] = ARMS, score: str = "val accuracy") -> str:
    """Per size and arm: the settings chosen (in how many seeds), val fits, chosen val score
    (`score`: what the arms were chosen by)."""
    if not _has_selection(cells):
        return "No selection was recorded for this run."
    lines = [f"| images per class | arm | val fits | chosen on val (seeds) | {score} % |", "|---|---|---|---|---|"]
    for size in sorted({c["size"] for c in cells}):
        group = [c for c in cells if c["size"] == size]
        for arm in arms:
            picks = [c["selection"][arm.name] for c in group]
            counts = Counter(describe(p["chosen"]) for p in picks)
            chosen = "; ".join(f"{text} ({n})" for text, n in counts.most_common(3))
            more = len(counts) - 3
            chosen += f"; {more} other setting(s)" if more > 0 else ""
            val = np.mean([p["val_acc"] for p in picks]) * 100
            lines.append(f"| {size} | {arm.label} | {picks[0]['val_fits']} | {chosen} | {val:.1f} |")
    return "\n".join(lines)


def ablation_table(cells: list[dict], arm: str) -> str:
    """Rows: every knob value tried; columns: sizes; entries: mean val accuracy of the tries with
    that value minus the chosen val accuracy of the arm this one extends (points, tries)."""
    if not _has_selection(cells):
        return ""
    baseline = BY_NAME[arm].extends
    sizes = sorted({c["size"] for c in cells})
    gains: dict[tuple[str, str], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for cell in cells:
        reference = cell["selection"][baseline]["val_acc"]
        for step in cell["selection"][arm]["trace"]:
            if step["val_acc"] is None:  # no samples to train on, or stopped by successive halving
                continue
            for knob, value in step["setting"].items():
                if value is not None:
                    gains[(knob, show_value(value))][cell["size"]].append(step["val_acc"] - reference)
    order = list(BY_NAME[arm].knobs)
    lines = ["| tried | " + " | ".join(f"n={s}" for s in sizes) + " |", "|---" * (len(sizes) + 1) + "|"]
    for knob, value in sorted(gains, key=lambda kv: (order.index(kv[0]), _number_first(kv[1]))):
        by_size = gains[(knob, value)]
        entries = [f"{np.mean(by_size[s]) * 100:+.1f} ({len(by_size[s])})" if by_size.get(s) else "—" for s in sizes]
        lines.append(f"| {knob} = {value} | " + " | ".join(entries) + " |")
    return "\n".join(lines)


def _number_first(text: str) -> tuple:
    """Numbers in numeric order (50 before 100), words after them alphabetically."""
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text)
