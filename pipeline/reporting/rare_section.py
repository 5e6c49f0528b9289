"""What fills the report's imbalanced-scenario section (`templates/imbalanced.md.j2`): the verdict,
the arm and per-class tables, and the choices made on val."""

from __future__ import annotations

from pipeline.config import Params
from pipeline.evaluation.arms import IMBALANCED_ARMS
from pipeline.evaluation.selection import IMBALANCE_CANDIDATES, show_value
from pipeline.reporting import selection_tables, tables
from pipeline.reporting.verdict import imbalanced_answer, imbalanced_headline

GAINS_LABELS = {
    "ylabel": "balanced-accuracy gain over plain training (points)",
    "title": "Gain over plain training on the imbalanced set (95% CI of the paired difference)",
}


def context(params: Params, metrics: dict, per_class: dict, cells: list[dict], size: int, class_names: list[str]) -> dict:
    ev = params.evaluate
    return {
        "answer": imbalanced_answer(metrics, size),
        "headline": imbalanced_headline(metrics, size, ev.rare_classes, ev.common_per_class),
        "results_tables": [(s, tables.imbalanced_table(metrics, s)) for s in ev.train_sizes],
        "per_class_table": tables.rare_per_class_table(per_class, size, class_names),
        "chosen_table": selection_tables.chosen_table(cells, IMBALANCED_ARMS, "val balanced accuracy"),
        "ablation_vae_rare": selection_tables.ablation_table(cells, "vae_rare"),
        "ablation_classic_vae_rare": selection_tables.ablation_table(cells, "classic_vae_rare"),
        "rare": {
            "classes": ev.rare_classes,
            "common": ev.common_per_class,
            **{knob: " / ".join(map(show_value, values)) for knob, values in IMBALANCE_CANDIDATES.items()},
            "picked_fix": selection_tables.picks(cells, size, "non_generative"),
            "picked_vae": selection_tables.picks(cells, size, "generative"),
        },
    }
