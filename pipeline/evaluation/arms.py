"""The arms of the learning curve: one registry that the evaluation, the report, the charts and
the comparison tool all read, so an arm's name, label, colour and baselines live in one place.

Torch-free on purpose: tools that only draw numbers import it without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass

TRAINING = ("steps", "lr")
SAMPLING = ("strategy", "temperature", "ratio", "min_confidence")


@dataclass(frozen=True)
class Arm:
    name: str
    label: str  # tables and legends
    phrase: str  # verdict sentences: "<phrase> change test accuracy by ..."
    colour: str
    rows: tuple[str, ...] = ("real",)  # what its classifier trains on: "real", "classic", "vae"
    knobs: tuple[str, ...] = TRAINING  # what it tunes on val, with the same budget as every arm
    extends: str | None = None  # the arm whose rows it adds VAE samples to (its val baseline)
    gain_over_real: bool = False  # report its paired gain over `real`
    gain_over_classic: bool = False  # ... and over `real_classic`

    @property
    def adds_vae(self) -> bool:
        return self.extends is not None


ARMS: tuple[Arm, ...] = (
    Arm("real", "real only", "real images alone", "#444444"),
    Arm("real_classic", "real + classic aug.", "classic augmentation", "#1f77b4",
        rows=("real", "classic"), knobs=(*TRAINING, "classic_copies"), gain_over_real=True),
    Arm("real_vae", "real + VAE samples", "VAE samples", "#d62728",
        rows=("real", "vae"), knobs=(*TRAINING, *SAMPLING, "synthetic_weight"), extends="real",
        gain_over_real=True, gain_over_classic=True),
    Arm("real_classic_vae", "real + classic + VAE", "both together", "#9467bd",
        rows=("real", "classic", "vae"), knobs=(*TRAINING, "classic_copies", *SAMPLING, "synthetic_weight"),
        extends="real_classic", gain_over_real=True, gain_over_classic=True),
    Arm("synthetic_only", "VAE samples only", "VAE samples alone", "#ff7f0e", rows=("vae",), knobs=(*TRAINING, *SAMPLING)),
)
FULL = Arm("full", "whole pool + classic (upper bound)", "the whole pool", "#2ca02c", rows=("real", "classic"))

BY_NAME: dict[str, Arm] = {arm.name: arm for arm in (*ARMS, FULL)}
NAMES: tuple[str, ...] = tuple(arm.name for arm in ARMS)
VAE_ARMS: tuple[Arm, ...] = tuple(arm for arm in ARMS if arm.adds_vae)
GAIN_ARMS: tuple[str, ...] = tuple(arm.name for arm in ARMS if arm.gain_over_real)


def label(name: str) -> str:
    """The arm's display label; an unknown name (a run from another version) shows as itself."""
    return BY_NAME[name].label if name in BY_NAME else name


def colour(name: str, fallback: str) -> str:
    return BY_NAME[name].colour if name in BY_NAME else fallback
