"""The report's tables of what the `auto` search chose and what every tried value scored."""

from pipeline.reporting.selection_tables import ablation_table, chosen_table

START = {"strategy": "prior", "temperature": 1.0, "ratio": 10.0, "min_confidence": 0.0, "synthetic_weight": 1.0}


def cell(seed: int, weight_acc: float) -> dict:
    """A cell whose search tried the start (val 0.80) and weight 0.3 (val `weight_acc`)."""
    lighter = {**START, "synthetic_weight": 0.3}
    chosen, best = (lighter, weight_acc) if weight_acc > 0.80 else (START, 0.80)
    trace = [
        {"knob": "start", "value": None, "setting": START, "val_acc": 0.80},
        {"knob": "synthetic_weight", "value": 0.3, "setting": lighter, "val_acc": weight_acc},
        {"knob": "min_confidence", "value": 0.9, "setting": {**START, "min_confidence": 0.9}, "val_acc": None},
    ]
    selection = {"chosen": chosen, "val_acc": best, "trace": trace}
    return {"size": 5, "seed": seed, "val_acc": {"real": 0.82, "real_classic": 0.84},
            "selection": {"real_vae": selection, "real_classic_vae": selection}}


def test_chosen_settings_are_counted_over_seeds_with_their_val_gain() -> None:
    table = chosen_table([cell(0, 0.86), cell(1, 0.85), cell(2, 0.70)])
    row = next(line for line in table.splitlines() if "real + VAE samples" in line)
    assert "prior T=1, 10x, w=0.3 (2)" in row and "prior T=1, 10x, w=1 (1)" in row
    # val gains over real: +4, +3, -2 points -> mean +1.7
    assert row.endswith("| +1.7 |")


def test_ablation_rows_are_val_gains_over_the_arms_baseline() -> None:
    table = ablation_table([cell(0, 0.86), cell(1, 0.84)], "real_classic_vae")
    lines = table.splitlines()
    assert lines[2] == "| start: prior T=1, 10x, w=1 | -4.0 (2) |"  # 0.80 - 0.84
    assert lines[3] == "| synthetic_weight = 0.3 | +1.0 (2) |"  # mean(0.86, 0.84) - 0.84
    assert not any("min_confidence" in line for line in lines)  # no samples left: not scored


def test_runs_without_a_search_say_so() -> None:
    assert "No selection" in chosen_table([{"size": 5, "seed": 0}]) and ablation_table([], "real_vae") == ""
