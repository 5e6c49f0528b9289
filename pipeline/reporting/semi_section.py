"""The semi-supervised scenario's table and verdict line (`evaluate.scenario: semi_supervised`):
every arm's accuracy, its gain over `real_classic` and over the best non-generative arm chosen on
val per seed, with intervals and the smallest gain the design detects, and the share of the gap
from `real_classic` to `full` it closes; what fills `templates/semi_supervised.md.j2`."""

from __future__ import annotations

from pipeline.config import Params
from pipeline.evaluation.arms import FULL, SEMI_SUPERVISED_ARMS, VAE_CLASSIFIER, label
from pipeline.evaluation.selection import SEMI_CANDIDATES, show_value
from pipeline.reporting import selection_tables
from pipeline.reporting.tables import fmt, fmt_ci, fmt_mde

ROWS = (*(arm.name for arm in SEMI_SUPERVISED_ARMS), VAE_CLASSIFIER.name, "best_non_generative", "best_generative")
GENERATIVE = ("vae_pseudo", "ssl_vae", "ssl_vae_pseudo")
LABELS = {"best_non_generative": "best non-generative, chosen on val", "best_generative": "best VAE arm, chosen on val"}


def results_table(metrics: dict, size: int) -> str:
    block = metrics[f"n{size}"]
    lines = [
        "| arm | accuracy % [95% CI] | gain over real + classic (points) | detectable | gain over best non-generative | detectable | gap to full closed |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in ROWS:
        if name not in block:
            continue
        e = block[name]
        gain = fmt_ci(e, "gain", signed=True) if "gain_mean" in e else "—"
        vs_best = fmt_ci(e, "gain_vs_best", signed=True) if "gain_vs_best_mean" in e else "—"
        closed = f"{e['gap_closed'] * 100:.0f}%" if e.get("gap_closed") is not None else "—"
        lines.append(
            f"| {LABELS.get(name, label(name))} | {fmt_ci(e, 'acc')} | {gain} | {fmt_mde(e, 'mde')} | {vs_best} "
            f"| {fmt_mde(e, 'mde_vs_best')} | {closed} |"
        )
    lines.append(f"| {FULL.label} | {fmt_ci(metrics['full'], 'acc')} | — | — | — | — | 100% |")
    return "\n".join(lines)


def verdict(metrics: dict, size: int) -> str:
    """The first line: does the best VAE arm (chosen on val per seed) beat the best fix without one?"""
    e = metrics[f"n{size}"]["best_generative"]
    if e.get("gain_vs_best_lo") is None:
        return f"Not enough seeds to tell at {size} labeled images per class."
    gain, lo, hi = (e[f"gain_vs_best_{k}"] * 100 for k in ("mean", "lo", "hi"))
    if lo > 0:
        return f"Yes: at {size} labeled images per class the best VAE arm beats the best non-generative one by {gain:+.1f} points [{lo:+.1f}, {hi:+.1f}]."
    if hi < 0:
        return f"No: at {size} labeled images per class the best VAE arm loses {gain:+.1f} points [{lo:+.1f}, {hi:+.1f}] to the best non-generative one."
    return (
        f"Not shown: at {size} labeled images per class the best VAE arm differs from the best non-generative one by "
        f"{gain:+.1f} points [{lo:+.1f}, {hi:+.1f}]; a gain of {fmt(e['mde_vs_best'] * 100, digits=1)} points or more would have been seen."
    )


GAINS_LABELS = {
    "ylabel": "accuracy gain over real + classic (points)",
    "title": "Gain over the labeled images with classic augmentation (95% CI of the paired difference)",
}


def headline(metrics: dict, size: int) -> str:
    block = metrics[f"n{size}"]
    parts = [f"{label(name)} {fmt_ci(block[name], 'gain', signed=True)}" for name in GENERATIVE + ("pseudo_label",) if name in block]
    return f"At {size} labeled images per class, gains over real + classic augmentation (points, 95% CI): " + "; ".join(parts) + "."


def context(params: Params, metrics: dict, cells: list[dict], size: int) -> dict:
    ev = params.evaluate
    return {
        "answer": verdict(metrics, size),
        "headline": headline(metrics, size),
        "results_tables": [(s, results_table(metrics, s)) for s in ev.train_sizes],
        "chosen_table": selection_tables.chosen_table(cells, SEMI_SUPERVISED_ARMS),
        "semi": {
            "unlabeled": ev.unlabeled_per_class,
            "thresholds": " / ".join(map(show_value, SEMI_CANDIDATES["pseudo_threshold"])),
            "rounds": " / ".join(map(show_value, SEMI_CANDIDATES["pseudo_rounds"])),
            "picked_fix": "best non-generative: " + selection_tables.picks(cells, size, "non_generative"),
            "picked_vae": "best VAE arm: " + selection_tables.picks(cells, size, "generative"),
        },
    }
