"""The arms of the learning curve: one registry that the evaluation, the report, the charts and
the comparison tool all read, so an arm's name, label, colour and baselines live in one place.

Torch-free on purpose: tools that only draw numbers import it without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass

TRAINING = ("steps", "lr")
SAMPLING = ("strategy", "temperature", "ratio", "min_confidence")
# The imbalanced scenario's VAE arms: the amount of samples is `rare_fill`, shared by every adding arm.
RARE_SAMPLING = ("strategy", "temperature", "min_confidence")
SCENARIOS = ("balanced", "imbalanced", "semi_supervised")


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
    loss: str = "plain"  # plain | reweight (inverse class frequency) | logit_adjust (Menon et al. 2021)
    rare_only: bool = False  # its added rows ("duplicates", "classic", "vae") are of the rare classes only

    @property
    def adds_vae(self) -> bool:
        return self.extends is not None

    @property
    def generative(self) -> bool:
        return "vae" in self.rows


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

# The imbalanced scenario (`evaluate.scenario: imbalanced`): the usual fixes for rare classes
# against VAE samples of them. Every adding arm adds the same number of rare rows for one value
# of `rare_fill` (classic + VAE half of each), so the amount is not what differs between them.
_RARE_VAE_KNOBS = (*TRAINING, "rare_fill", *RARE_SAMPLING, "synthetic_weight")
IMBALANCED_ARMS: tuple[Arm, ...] = (
    Arm("plain", "plain training", "plain training", "#444444"),
    Arm("reweight", "class re-weighting", "re-weighting by inverse class frequency", "#8c564b",
        knobs=(*TRAINING, "weight_power"), gain_over_real=True, loss="reweight"),
    Arm("logit_adjust", "logit adjustment", "logit adjustment", "#e377c2",
        knobs=(*TRAINING, "tau"), gain_over_real=True, loss="logit_adjust"),
    Arm("oversample", "random oversampling", "random oversampling of the rare classes", "#7f7f7f",
        rows=("real", "duplicates"), knobs=(*TRAINING, "rare_fill"), gain_over_real=True, rare_only=True),
    Arm("classic_rare", "classic copies of rare", "classic-augmentation copies of the rare classes", "#1f77b4",
        rows=("real", "classic"), knobs=(*TRAINING, "rare_fill"), gain_over_real=True, rare_only=True),
    Arm("vae_rare", "VAE samples of rare", "VAE samples of the rare classes", "#d62728",
        rows=("real", "vae"), knobs=_RARE_VAE_KNOBS, extends="plain", gain_over_real=True, rare_only=True),
    Arm("classic_vae_rare", "classic + VAE of rare", "classic copies and VAE samples of the rare classes", "#9467bd",
        rows=("real", "classic", "vae"), knobs=_RARE_VAE_KNOBS, extends="classic_rare", gain_over_real=True, rare_only=True),
)

# Label noise and cleaning (`evaluate.label_noise`, `evaluate.clean`), balanced scenario only: the
# real images with the audit's label suspects dropped or relabelled, and, when labels were flipped
# on purpose, the same images with their true labels (an oracle: what the faults cost).
CLEANED = Arm("real_cleaned", "real, labels cleaned", "cleaning the labels", "#17becf", rows=("cleaned",), gain_over_real=True)
TRUE_LABELS = Arm("real_true_labels", "real, true labels (oracle)", "the true labels", "#bcbd22", rows=("true",), gain_over_real=True)

# The semi-supervised scenario (`evaluate.scenario: semi_supervised`): labeled images plus unlabeled
# ones whose labels no model reads. The baseline is `real_classic`; self-training is the usual
# non-generative use of the unlabeled images; the VAE, trained semi-supervised on both, labels them
# (`vae_pseudo`, its q(y|x)) and samples (`ssl_vae`). Every arm keeps classic augmentation.
_CLASSIC = (*TRAINING, "classic_copies")
SEMI_SUPERVISED_ARMS: tuple[Arm, ...] = (
    ARMS[1],  # real_classic
    Arm("pseudo_label", "pseudo-labelling", "self-training on pseudo-labels", "#8c564b",
        rows=("real", "classic", "pseudo"), knobs=(*_CLASSIC, "pseudo_threshold", "pseudo_rounds")),
    Arm("vae_pseudo", "VAE pseudo-labels", "the semi-supervised VAE's pseudo-labels", "#e377c2",
        rows=("real", "classic", "vae_pseudo"), knobs=(*_CLASSIC, "pseudo_threshold")),
    Arm("ssl_vae", "real + classic + SSL-VAE samples", "samples of the semi-supervised VAE", "#d62728",
        rows=("real", "classic", "vae"), knobs=(*_CLASSIC, *SAMPLING, "synthetic_weight"), extends="real_classic"),
    Arm("ssl_vae_pseudo", "VAE pseudo-labels + samples", "the semi-supervised VAE's pseudo-labels and samples", "#9467bd",
        rows=("real", "classic", "vae_pseudo", "vae"), knobs=(*_CLASSIC, "pseudo_threshold", *SAMPLING, "synthetic_weight"),
        extends="vae_pseudo"),
)
VAE_CLASSIFIER = Arm("vae_classifier", "the VAE's q(y|x) (reference)", "the VAE's own classifier", "#bcbd22", rows=())

BY_NAME: dict[str, Arm] = {
    arm.name: arm for arm in (*ARMS, FULL, *IMBALANCED_ARMS, CLEANED, TRUE_LABELS, *SEMI_SUPERVISED_ARMS, VAE_CLASSIFIER)
}
NAMES: tuple[str, ...] = tuple(arm.name for arm in ARMS)
VAE_ARMS: tuple[Arm, ...] = tuple(arm for arm in ARMS if arm.adds_vae)
GAIN_ARMS: tuple[str, ...] = tuple(arm.name for arm in ARMS if arm.gain_over_real)


def arms_for(scenario: str, clean: str = "off", label_noise: float = 0.0) -> tuple[Arm, ...]:
    """The arms of `evaluate.scenario`; `ARMS` stays the balanced scenario's default set, which
    `evaluate.clean` and `evaluate.label_noise` extend at the end (earlier arms keep their index,
    so their seeded plans do not move)."""
    if scenario == "imbalanced":
        return IMBALANCED_ARMS
    return ARMS + ((CLEANED,) if clean != "off" else ()) + ((TRUE_LABELS,) if label_noise > 0 else ())


def label(name: str) -> str:
    """The arm's display label; an unknown name (a run from another version) shows as itself."""
    return BY_NAME[name].label if name in BY_NAME else name


def colour(name: str, fallback: str) -> str:
    return BY_NAME[name].colour if name in BY_NAME else fallback
