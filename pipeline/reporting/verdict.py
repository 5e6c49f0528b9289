"""Plain-words sentences computed from the metrics, so the report's headline follows the numbers."""

from __future__ import annotations

import math

from pipeline.evaluation.arms import BY_NAME


def _points(value: float) -> str:
    """Signed points with one decimal; a value that rounds to zero is +0.0, never -0.0."""
    points = round(value * 100, 1)
    return f"{points + 0.0 if points else 0.0:+.1f}"


def detectable(mde: float | None) -> str:
    """'; a gain of 1.9 points or more would have been seen' (80% power), or nothing if unknown."""
    if mde is None or math.isnan(mde):
        return ""
    return f"; a true gain of {mde * 100:.1f} points or more would have been seen (80% power)"


def describe_gain(mean: float, lo: float | None, hi: float | None, mde: float | None = None, unit: str = "accuracy") -> str:
    """'+1.8 points (95% CI +0.6 to +3.0)' and whether that is a gain, a loss or neither; next to a
    gain within noise, the smallest gain the design would have detected. `unit`: what the points
    are points of."""
    if _no_interval(lo, hi):
        return f"{_points(mean)} points (no confidence interval: one seed, or no spread over seeds; not enough evidence)"
    ci = f"95% CI {_points(lo)} to {_points(hi)}"
    if lo > 0:
        return f"{_points(mean)} points of {unit} ({ci})"
    if hi < 0:
        return f"{_points(mean)} points, a significant loss ({ci})"
    return f"{_points(mean)} points, not significant ({ci}{detectable(mde)})"


def headline(metrics: dict, size: int) -> str:
    """One sentence: what VAE samples, classic augmentation and both do at `size` per class."""
    block = metrics[f"n{size}"]
    vae = block["real_vae"]
    parts = [f"At {size} images per class, VAE samples change test accuracy by "
             f"{describe_gain(vae['gain_mean'], vae['gain_lo'], vae['gain_hi'], vae.get('mde'))}"]
    for arm in ("real_classic", "real_classic_vae"):
        entry = block[arm]
        parts.append(f"{BY_NAME[arm].phrase} by {describe_gain(entry['gain_mean'], entry['gain_lo'], entry['gain_hi'], entry.get('mde'))}")
    return "; ".join(parts) + "."


def answer(metrics: dict, size: int) -> str:
    """The short answer to 'does generative augmentation help?' at `size` per class."""
    block = metrics[f"n{size}"]
    vae, both = block["real_vae"], block["real_classic_vae"]
    vs_classic = both.get("gain_vs_classic_lo"), both.get("gain_vs_classic_hi")
    verdict = {
        1: "Yes: VAE samples help over real images alone",
        -1: "No: VAE samples hurt compared with real images alone",
        0: "Not shown: the VAE's gain over real images alone is within noise"
           + (f" (a gain of {vae['mde'] * 100:.1f} points or more would have been seen)" if _known(vae.get("mde")) else ""),
        None: "Not enough evidence: the VAE's gain over real images alone has no confidence interval "
              "(one seed, or no spread over seeds)",
    }[_significant(vae["gain_lo"], vae["gain_hi"])]
    extra = {
        1: "and they add to classic augmentation",
        -1: "and they hurt on top of classic augmentation",
        0: "and on top of classic augmentation they make no significant difference",
        None: "and on top of classic augmentation there is not enough evidence either way",
    }[_significant(*vs_classic)]
    return f"{verdict}, {extra} (at {size} images per class)."


def imbalanced_answer(metrics: dict, size: int) -> str:
    """The short answer for rare classes: do VAE samples beat the best non-generative fix?"""
    best = metrics[f"n{size}"]["best_generative"]
    verdict = {
        1: "Yes: VAE samples of the rare classes beat the best non-generative fix for imbalance",
        -1: "No: VAE samples of the rare classes do worse than the best non-generative fix for imbalance",
        0: "Not shown: VAE samples of the rare classes do no better than the best non-generative fix within noise",
        None: "Not enough evidence: the VAE's gain over the best non-generative fix has no confidence interval "
              "(one seed, or no spread over seeds)",
    }[significant := _significant(best["gain_vs_best_lo"], best["gain_vs_best_hi"])]
    seen = f"; a gain of {best['mde_vs_best'] * 100:.1f} points or more would have been seen" if significant == 0 and _known(best.get("mde_vs_best")) else ""
    return f"{verdict} (balanced accuracy, {size} images per rare class{seen})."


def imbalanced_headline(metrics: dict, size: int, rare: int, common: int) -> str:
    """One sentence: the best VAE arm against the best fix and against plain training, and what
    the best fix itself does; every "best" chosen on val per seed, never on test."""
    block = metrics[f"n{size}"]
    gen, fix = block["best_generative"], block["best_non_generative"]

    def gain(entry: dict, prefix: str) -> str:
        mde_key = "mde" if prefix == "gain" else f"mde_{prefix.removeprefix('gain_')}"
        return describe_gain(entry[f"{prefix}_mean"], entry[f"{prefix}_lo"], entry[f"{prefix}_hi"], entry.get(mde_key), unit="balanced accuracy")

    return (f"With {rare} rare classes of {size} images and up to {common} images of every other class, the better VAE arm "
            f"(chosen on val per seed) changes balanced accuracy by {gain(gen, 'gain_vs_best')} over the best "
            f"non-generative fix (chosen on val per seed), and by {gain(gen, 'gain')} over plain training; "
            f"the best non-generative fix changes it by {gain(fix, 'gain')} over plain training.")


def _known(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


def _no_interval(lo: float | None, hi: float | None) -> bool:
    """Nothing to judge a gain by: nan/null bounds (one seed, or no spread over seeds), or the
    zero-width interval that metrics written before nan bounds for zero spread still hold."""
    return lo is None or hi is None or math.isnan(lo) or math.isnan(hi) or lo == hi


def _significant(lo: float | None, hi: float | None) -> int | None:
    """1 a significant gain, -1 a significant loss, 0 within noise, None no interval to tell."""
    if _no_interval(lo, hi):
        return None
    return 1 if lo > 0 else -1 if hi < 0 else 0


NEAR_COPIES_NAMED = 0.5  # a near-copy rate the diagnosis spells out: most samples restate a training image


def diagnosis(quality: dict) -> str:
    """Why samples may or may not help, in words, from the quality metrics of one training size."""
    fidelity, coverage, memo = quality["label_fidelity"], quality["coverage"], quality["memorisation_ratio"]
    real = quality.get("assessor_accuracy")
    # absent or nan: a run from before it was recorded
    ceiling = "" if real is None or real != real else f" ({real:.0%} of held-out real images are)"
    looks = (f"{fidelity:.0%} of the samples are recognised as their class{ceiling}" if fidelity >= 0.8
             else f"only {fidelity:.0%} of the samples are recognised as their class{ceiling}, so many carry a wrong label")
    diversity = quality.get("diversity_ratio", float("nan"))
    spread = ("" if diversity != diversity  # nan: a run from before the metric existed
              else f"; samples of a class differ from one another {diversity:.2f}x as much as real images of it do"
              + (" (near-copies of one template per class)" if diversity < 0.5 else ""))
    variety = (f"they cover {coverage:.0%} of the real images' neighbourhoods (coverage){spread}" if coverage >= 0.5
               else f"they cover only {coverage:.0%} of the real images' neighbourhoods (coverage): little variety{spread}")
    copies = ("and sit closer to the training images than new real images do (memorisation ratio "
              f"{memo:.2f}), i.e. they mostly restate what the classifier already sees" if memo < 1
              else f"and are no closer to the training images than new real images are (memorisation ratio {memo:.2f})")
    near = quality.get("near_copy_rate", float("nan"))
    if near >= NEAR_COPIES_NAMED:  # e.g. `posterior` samples of a handful of 28x28 images (docs/vae.md)
        copies += f"; {near:.0%} of them are near-copies of a training image (closer to one than 99% of new real images are)"
    return f"{looks}; {variety}, {copies}."


def cleaning_answer(metrics: dict, size: int, action: str) -> str:
    """What cleaning the labels did at `size` per class, and, when labels were flipped on purpose,
    what the flips cost and what share of that cleaning recovered."""
    block = metrics[f"n{size}"]
    cleaned, summary = block["real_cleaned"], block.get("cleaning", {})
    verb = {"drop": "Dropping", "relabel": "Relabelling"}[action]
    text = (f"{verb} the audit's label suspects changes test accuracy by "
            f"{describe_gain(cleaned['gain_mean'], cleaned['gain_lo'], cleaned['gain_hi'], cleaned.get('mde'))} "
            f"over training on the labels as given (at {size} images per class)")
    if "cost_mean" in summary:
        cost = describe_gain(summary["cost_mean"], summary["cost_lo"], summary["cost_hi"], summary.get("mde_cost"))
        share = summary.get("recovered_share")
        recovered = (f"cleaning recovered {share * 100:.0f}% of it" if _known(share)
                     else "so there was no cost for cleaning to recover")
        text += f"; the flipped labels cost {cost} against the true labels, and {recovered}"
    return text + "."
