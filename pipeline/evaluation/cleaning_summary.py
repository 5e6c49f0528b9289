"""The summary of label noise and cleaning over seeds: what the flipped labels cost, what share of
it cleaning recovered, and how many flags were right.

cost = real_true_labels - real and recovered = real_cleaned - real, paired per seed;
recovered_share = mean recovered / mean cost (nan when the noise cost nothing on average). The
gain of `real_cleaned` itself (`n10.real_cleaned.gain_*`) is in the arms' own block. Flattened
keys: `n10.cleaning.cost_mean`, `..cost_lo`, `..mde_cost`, `..recovered_share`, `..flagged_mean`,
`..precision` (pooled over seeds: flagged images whose label had been flipped), `..recall`.
"""

from __future__ import annotations

import numpy as np

from pipeline.evaluation import intervals

COUNTS = ("images", "flipped", "flagged", "flagged_flipped", "suggested_true")


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else float("nan")


def summarize_size(records: list[dict], acc: dict[str, list[float]]) -> dict:
    """`records`: each cell's `cleaning` record (seed order); `acc`: test accuracy per arm, same order."""
    out: dict = {f"{key}_mean": float(np.mean([r[key] for r in records])) for key in COUNTS if key in records[0]}
    total = {key: int(sum(r[key] for r in records)) for key in COUNTS if key in records[0]}
    if "flagged" in total:
        out["precision"] = _ratio(total["flagged_flipped"], total["flagged"])
        out["recall"] = _ratio(total["flagged_flipped"], total["flipped"])
        out["suggested_true_share"] = _ratio(total["suggested_true"], total["flagged_flipped"])
    if "real_true_labels" in acc:
        out.update(intervals.gain_keys("cost", acc["real_true_labels"], acc["real"]))
        if "real_cleaned" in acc:
            means = {arm: float(np.mean(acc[arm])) for arm in ("real", "real_cleaned", "real_true_labels")}
            recovered = intervals.gap_closed(means["real_cleaned"], means["real"], means["real_true_labels"])
            out["recovered_share"] = recovered if out["cost_mean"] > 0 else float("nan")
    return out
