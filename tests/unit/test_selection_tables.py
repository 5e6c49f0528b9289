"""The report's tables of what each arm chose on val and what every tried value scored."""

from pipeline.evaluation.arms import NAMES
from pipeline.reporting.selection_tables import ablation_table, chosen_table

START = {"steps": 200, "lr": 0.005, "strategy": "prior", "temperature": 1.0, "ratio": 10.0, "min_confidence": 0.0, "synthetic_weight": 1.0}


def cell(seed: int, weight_acc: float) -> dict:
    """Every arm tried the start (val 0.80), weight 0.3 (val `weight_acc`) and a filter that left
    no samples; the real arms chose at val 0.82 and 0.84."""
    lighter = {**START, "synthetic_weight": 0.3}
    chosen, best = (lighter, weight_acc) if weight_acc > 0.80 else (START, 0.80)
    trace = [
        {"setting": START, "val_acc": 0.80},
        {"setting": lighter, "val_acc": weight_acc},
        {"setting": {**START, "min_confidence": 0.9}, "val_acc": None},
    ]
    selection = {arm: {"chosen": chosen, "val_acc": best, "trace": trace, "val_fits": 3} for arm in NAMES}
    selection["real"] = {**selection["real"], "val_acc": 0.82}
    selection["real_classic"] = {**selection["real_classic"], "val_acc": 0.84}
    return {"size": 5, "seed": seed, "selection": selection}


def test_chosen_settings_are_counted_over_seeds_with_their_val_fits_and_accuracy() -> None:
    table = chosen_table([cell(0, 0.86), cell(1, 0.85), cell(2, 0.70)])
    row = next(line for line in table.splitlines() if "real + VAE samples" in line)
    assert "| 3 |" in row, "val fits"
    assert "prior T=1, 10x, w=0.3 (2)" in row and "prior T=1, 10x, w=1 (1)" in row
    assert row.endswith("| 83.7 |")  # mean(0.86, 0.85, 0.80)


def test_ablation_rows_are_val_gains_over_the_arm_it_extends() -> None:
    table = ablation_table([cell(0, 0.86), cell(1, 0.84)], "real_classic_vae")
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1].rstrip(" |") for line in table.splitlines()[2:]}
    assert rows["synthetic_weight = 0.3"] == "+1.0 (2)"  # mean(0.86, 0.84) - 0.84
    assert rows["synthetic_weight = 1"] == "-4.0 (2)"  # 0.80 - 0.84
    assert rows["steps = 200"] == "-1.5 (4)"  # all four scored tries
    assert "min_confidence = 0.9" not in rows  # no samples left: not scored


def test_runs_without_a_search_say_so() -> None:
    assert "No selection" in chosen_table([{"size": 5, "seed": 0}]) and ablation_table([], "real_vae") == ""
