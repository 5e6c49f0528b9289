import pytest

from pipeline.evaluation.intervals import paired_gain
from pipeline.reporting.verdict import answer, describe_gain, headline


def block(vae: tuple, classic: tuple, both: tuple, both_vs_classic: tuple = (0.0, -0.01, 0.01)) -> dict:
    entry = lambda g: {"gain_mean": g[0], "gain_lo": g[1], "gain_hi": g[2]}  # noqa: E731
    return {
        "n10": {
            "real_vae": entry(vae),
            "real_classic": entry(classic),
            "real_classic_vae": {**entry(both), "gain_vs_classic_mean": both_vs_classic[0], "gain_vs_classic_lo": both_vs_classic[1], "gain_vs_classic_hi": both_vs_classic[2]},
        }
    }


def test_a_significant_gain_is_called_a_gain() -> None:
    metrics = block((0.018, 0.006, 0.030), (0.024, 0.01, 0.04), (0.031, 0.02, 0.04), (0.01, 0.002, 0.02))
    assert headline(metrics, 10).startswith("At 10 images per class, VAE samples change test accuracy by +1.8 points of accuracy (95% CI +0.6 to +3.0)")
    assert answer(metrics, 10).startswith("Yes: VAE samples help")
    assert "add to classic augmentation" in answer(metrics, 10)


def test_an_interval_across_zero_is_not_significant() -> None:
    metrics = block((0.004, -0.008, 0.016), (0.02, 0.01, 0.03), (0.02, 0.0, 0.04))
    assert "+0.4 points, not significant (95% CI -0.8 to +1.6)" in headline(metrics, 10)
    assert answer(metrics, 10).startswith("Not shown")


def test_a_loss_is_reported_as_a_loss() -> None:
    metrics = block((-0.031, -0.040, -0.021), (0.01, -0.01, 0.03), (0.0, -0.02, 0.02), (-0.02, -0.03, -0.01))
    assert "-3.1 points, a significant loss (95% CI -4.0 to -2.1)" in headline(metrics, 10)
    assert answer(metrics, 10).startswith("No: VAE samples hurt")
    assert "hurt on top of classic augmentation" in answer(metrics, 10)


@pytest.mark.parametrize("bounds", [(None, None), (float("nan"), float("nan")), (0.05, 0.05)])
def test_one_seed_is_not_a_finding(bounds: tuple) -> None:
    assert "no confidence interval" in describe_gain(0.05, *bounds)
    assert "not enough evidence" in describe_gain(0.05, *bounds)


@pytest.mark.parametrize("seeds", [[0.70, 0.70, 0.70], [0.80, 0.60, 0.75], [0.70]], ids=["constant", "varying-arms", "one-seed"])
def test_a_gain_without_spread_over_seeds_is_not_enough_evidence(seeds: list[float]) -> None:
    """The same +5 points on every seed (or one seed) has no interval: neither 'helps' nor 'hurts'."""
    up, down = (paired_gain([acc + shift for acc in seeds], seeds) for shift in (0.05, -0.03))
    up, down = (up.mean, up.lo, up.hi), (down.mean, down.lo, down.hi)
    metrics = block(up, up, down, down)
    verdict = answer(metrics, 10)
    assert verdict.startswith("Not enough evidence")
    assert "help" not in verdict and "hurt" not in verdict and "significant" not in verdict
    assert "not enough evidence either way" in verdict
    assert "points of accuracy" not in headline(metrics, 10) and "significant loss" not in headline(metrics, 10)


def test_diagnosis_names_what_is_wrong_with_the_samples() -> None:
    from pipeline.reporting.verdict import diagnosis

    prototypes = diagnosis({"label_fidelity": 1.0, "coverage": 0.25, "memorisation_ratio": 0.75})
    assert "100% of the samples are recognised" in prototypes and "only 25%" in prototypes and "restate" in prototypes
    mislabeled = diagnosis({"label_fidelity": 0.5, "coverage": 0.8, "memorisation_ratio": 1.2})
    assert "wrong label" in mislabeled and "only" not in mislabeled.split(";")[1] and "no closer" in mislabeled
    against_real = diagnosis({"label_fidelity": 0.7, "assessor_accuracy": 0.96, "coverage": 0.8, "memorisation_ratio": 1.2})
    assert against_real.startswith("only 70% of the samples are recognised as their class (96% of held-out real images are)")
    copies = diagnosis({"label_fidelity": 0.93, "coverage": 0.7, "memorisation_ratio": 0.44, "near_copy_rate": 0.94})
    assert copies.endswith("94% of them are near-copies of a training image (closer to one than 99% of new real images are).")
    assert "near-copies of a training image" not in diagnosis({"label_fidelity": 0.98, "coverage": 0.8, "memorisation_ratio": 0.87, "near_copy_rate": 0.02})


def test_a_gain_within_noise_says_what_gain_would_have_been_seen() -> None:
    from pipeline.reporting.verdict import describe_gain

    text = describe_gain(0.004, -0.006, 0.014, mde=0.0142)
    assert "not significant" in text and "1.4 points or more would have been seen" in text
    assert "would have been seen" not in describe_gain(0.03, 0.01, 0.05, mde=0.0142)  # a finding needs no excuse
