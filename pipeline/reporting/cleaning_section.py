"""What fills the report's "Cleaning the labels" section (`templates/cleaning.md.j2`): the verdict,
the arms' table and how many flags were right; shown only when `evaluate.clean` is on."""

from __future__ import annotations

from pipeline.config import Params
from pipeline.evaluation.arms import BY_NAME
from pipeline.reporting.tables import fmt_ci, fmt_mde
from pipeline.reporting.verdict import cleaning_answer

ROWS = ("real", "real_cleaned", "real_true_labels")


def cleaning_table(block: dict) -> str:
    """Real (labels as given), cleaned and, when labels were flipped on purpose, true labels."""
    lines = ["| arm | accuracy % [95% CI] | gain over real (points) | detectable gain |", "|---|---|---|---|"]
    for name in ROWS:
        if name not in block:
            continue
        e = block[name]
        gain = fmt_ci(e, "gain", signed=True) if "gain_mean" in e else "—"
        lines.append(f"| {BY_NAME[name].label} | {fmt_ci(e, 'acc')} | {gain} | {fmt_mde(e, 'mde')} |")
    return "\n".join(lines)


def flags_sentence(summary: dict, action: str, folds: int) -> str:
    """'Per cell the audit flagged 1.6 of 100 images ...; 75% of them had truly been flipped ...'."""
    done = {"drop": "dropped", "relabel": "relabelled to the suggested label"}[action]
    text = (f"Per cell the audit flagged {summary['flagged_mean']:.1f} of {summary['images_mean']:.0f} real training images "
            f"(each judged by one of {folds} VAEs that did not train on it; the audit's flags), which were {done}")
    if summary.get("flipped_mean"):
        text += (f"; {summary['precision'] * 100:.0f}% of the flagged images had truly been flipped"
                 f" (precision), and the flags found {summary['recall'] * 100:.0f}% of the {summary['flipped_mean']:.1f} flips per cell (recall)")
        if action == "relabel" and summary["flagged_flipped_mean"]:
            text += f"; {summary['suggested_true_share'] * 100:.0f}% of the found flips were given back their true label"
    return text + "."


def context(params: Params, metrics: dict, size: int) -> dict | None:
    """The section's context, or None when cleaning is off (the section is not shown)."""
    ev = params.evaluate
    if ev.clean == "off":
        return None
    block = metrics[f"n{size}"]
    return {
        "answer": cleaning_answer(metrics, size, ev.clean),
        "noise": ev.label_noise,
        "noise_pct": f"{ev.label_noise * 100:g}",
        "flags": flags_sentence(block["cleaning"], ev.clean, params.audit.folds),
        "tables": [(s, cleaning_table(metrics[f"n{s}"])) for s in ev.train_sizes],
    }
