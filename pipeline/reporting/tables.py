"""The report's Markdown tables and number formats, computed from the metrics files."""

from __future__ import annotations

import numpy as np

from pipeline.config import Params
from pipeline.evaluation.arms import ARMS, FULL, IMBALANCED_ARMS

def headline_size(params: Params) -> int:
    """The size the verdict talks about: the default training size if the curve has it."""
    sizes = params.evaluate.train_sizes
    return params.dataset.train_per_class if params.dataset.train_per_class in sizes else min(sizes)


def fmt(value: float | None, pct: bool = False, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    return f"{value * 100:.1f}" if pct else f"{value:.{digits}f}"


def fmt_ci(entry: dict, prefix: str, signed: bool = False) -> str:
    mean, lo, hi = entry[f"{prefix}_mean"], entry[f"{prefix}_lo"], entry[f"{prefix}_hi"]
    sign = "+" if signed else ""
    if lo is None:
        return f"{mean * 100:{sign}.1f}"
    return f"{mean * 100:{sign}.1f} [{lo * 100:{sign}.1f}, {hi * 100:{sign}.1f}]"


def results_table(metrics: dict, size: int) -> str:
    """Per arm: accuracy, macro-F1, gains with intervals, the smallest gain the design detects."""
    block = metrics[f"n{size}"]
    lines = [
        "| arm | accuracy % [95% CI] | macro-F1 % | gain over real (points) | detectable gain | gain over classic (points) | detectable gain | gap to full closed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for arm in ARMS:
        e = block[arm.name]
        gain = fmt_ci(e, "gain", signed=True) if "gain_mean" in e else "—"
        vs_classic = fmt_ci(e, "gain_vs_classic", signed=True) if "gain_vs_classic_mean" in e else "—"
        closed = f"{e['gap_closed'] * 100:.0f}%" if e.get("gap_closed") is not None else "—"
        lines.append(
            f"| {arm.label} | {fmt_ci(e, 'acc')} | {fmt(e['f1_mean'], pct=True)} | {gain} | {fmt_mde(e, 'mde')} "
            f"| {vs_classic} | {fmt_mde(e, 'mde_vs_classic')} | {closed} |"
        )
    full = metrics["full"]
    lines.append(f"| {FULL.label} | {fmt_ci(full, 'acc')} | {fmt(full['f1_mean'], pct=True)} | — | — | — | — | 100% |")
    return "\n".join(lines)


def fmt_mde(entry: dict, key: str) -> str:
    """`±2.1`: a true gain this large or larger would be seen (80% power, 5% two-sided)."""
    if key not in entry:
        return "—"
    value = entry[key]
    return "n/a" if value is None or np.isnan(value) else f"±{value * 100:.1f}"


def per_class_table(per_class: dict, size: int, class_names: list[str]) -> str:
    block = per_class[f"n{size}"]
    lines = ["| class | " + " | ".join(arm.label for arm in ARMS) + " |", "|---" * (len(ARMS) + 1) + "|"]
    for i, name in enumerate(class_names):
        lines.append(f"| {name} | " + " | ".join(fmt(block[arm.name][i], pct=True) for arm in ARMS) + " |")
    return "\n".join(lines)


BEST_ROWS = {"best_non_generative": "best non-generative fix (chosen on val per seed)",
             "best_generative": "better VAE arm (chosen on val per seed)"}


def imbalanced_table(metrics: dict, size: int) -> str:
    """Per arm of the imbalanced scenario: balanced accuracy, rare-class recall, macro-F1, and the
    paired gains in balanced accuracy over plain training and over the best non-generative fix."""
    block = metrics[f"n{size}"]
    header = ("| arm | balanced accuracy % [95% CI] | rare-class recall % [95% CI] | macro-F1 % | gain over plain (points) "
              "| detectable gain | gain over best non-generative (points) | detectable gain | val fits |")
    lines = [header, "|---|---|---|---|---|---|---|---|---|"]
    rows = [(arm.label, block[arm.name]) for arm in IMBALANCED_ARMS] + [(text, block[key]) for key, text in BEST_ROWS.items()]
    for text, e in rows:
        gain = fmt_ci(e, "gain", signed=True) if "gain_mean" in e else "—"
        vs_best = fmt_ci(e, "gain_vs_best", signed=True) if "gain_vs_best_mean" in e else "—"
        lines.append(
            f"| {text} | {fmt_ci(e, 'bal_acc')} | {fmt_ci(e, 'rare_recall')} | {fmt(e['f1_mean'], pct=True)} | {gain} | {fmt_mde(e, 'mde')} "
            f"| {vs_best} | {fmt_mde(e, 'mde_vs_best')} | {e.get('val_fits', '—')} |"
        )
    return "\n".join(lines)


def rare_per_class_table(per_class: dict, size: int, class_names: list[str]) -> str:
    """Test recall per class and arm, apart for the seeds the class was rare (marked) and those it
    was common: the rare classes are drawn per seed."""
    block = per_class[f"n{size}"]
    seeds, total = block["rare_seeds"], block["seeds"]
    header = "| class | drawn as | seeds | " + " | ".join(arm.label for arm in IMBALANCED_ARMS) + " |"
    lines = [header, "|---" * (len(IMBALANCED_ARMS) + 3) + "|"]
    for i, name in enumerate(class_names):
        for status in ("rare", "common"):
            values = [block[status][arm.name][i] for arm in IMBALANCED_ARMS]
            if all(v is None or np.isnan(v) for v in values):
                continue  # never drawn in this role
            mark = "**rare**" if status == "rare" else "common"
            count = seeds[i] if status == "rare" else total - seeds[i]
            lines.append(f"| {name} | {mark} | {count} | " + " | ".join(fmt(v, pct=True) for v in values) + " |")
    return "\n".join(lines)
