"""`params.yaml` parsed once into typed, validated, frozen config objects.

One pydantic model per section. `extra="forbid"` makes a misspelt key an error instead of a
silently ignored setting; every failure becomes a `PipelineError` naming the param at fault.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from pipeline import kernels
from pipeline.errors import PipelineError

DEFAULT_PARAMS = Path("params.yaml")

Fraction = Annotated[float, Field(gt=0, lt=1)]
Positive = Annotated[int, Field(ge=1)]
Auto = Literal["auto"]  # chosen on `val` by the pipeline itself (see pipeline/evaluation/selection.py)



def _yaml_off(value: object) -> object:
    """YAML 1.1 reads a bare `off` as false: take it as the word the param file shows."""
    return "off" if value is False else value


Cleaning = Annotated[Literal["off", "drop", "relabel"], BeforeValidator(_yaml_off)]

SOURCES = ("sklearn_digits", "image_folder", "parquet", "csv", "npz", "idx")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetConfig(Strict):
    source: Literal["sklearn_digits", "image_folder", "parquet", "csv", "npz", "idx"] = (
        "sklearn_digits"
    )
    path: str | None = None
    labels_path: str | None = None  # idx: the labels file (path holds the images file)
    image_column: str = "image"
    label_column: str = "label"
    class_names: list[str] | None = None
    image_size: Annotated[int, Field(ge=8, le=64)] | None = None
    channels: Literal[1, 3] | None = None
    on_error: Literal["raise", "skip"] = "raise"
    max_image_pixels: Positive = 4096 * 4096  # larger headers are refused before decoding (bombs)
    max_aspect_ratio: Annotated[float, Field(ge=1)] = 10.0  # long side / short side, e.g. 100000x1
    test_fraction: Fraction = 0.2
    val_fraction: Fraction = 0.2
    train_per_class: Positive | None = 10
    unlabeled_path: str | None = None  # images without labels: a flat image folder, a .parquet or a .npz
    unlabeled_per_class: Annotated[int, Field(ge=0)] | None = 0  # pool images per class whose labels are dropped; null = all

    @model_validator(mode="after")
    def _check(self) -> DatasetConfig:
        if self.test_fraction + self.val_fraction >= 1:
            raise ValueError("test_fraction + val_fraction must leave a training pool (< 1)")
        if self.unlabeled_path and self.unlabeled_per_class != 0:
            raise ValueError("unlabeled_per_class: set it to 0 when unlabeled_path gives the unlabeled images")
        if self.source != "sklearn_digits" and not self.path:
            raise ValueError(f"source {self.source!r} needs dataset.path")
        return self


class TrainerConfig(Strict):
    """Lightning Trainer settings; the same stage code runs on CPU, one GPU or DDP."""

    accelerator: str = "cpu"
    devices: int | str = 1
    strategy: str = "auto"
    precision: str = "32-true"
    num_workers: Annotated[int, Field(ge=0)] = 0
    num_threads: Positive | None = 1  # torch CPU threads per process; pinned for reproducible CPU runs
    progress_bar: bool = True
    # portable: the same bits on any x86-64 CPU with AVX2; native: this CPU's fastest kernels
    cpu_kernels: Literal["portable", "native"] = "portable"


# `auto` VAE settings follow the image size: images this large (28x28) get a sigma-VAE (Gaussian
# likelihood, learned scale) twice as wide. Measured on the hard 28x28 letters, 5 per class, 3 seeds:
# label fidelity of prior / borrow / posterior samples 0.69 / 0.71 / 0.80 -> 0.82 / 0.78 / 0.93,
# recall 0.27 / 0.47 / 0.28 -> 0.39 / 0.70 / 0.45 (docs/vae.md). The 8x8 digits keep Bernoulli and
# 32 channels: there fidelity is 0.98-1.00 either way, and the wide sigma-VAE loses variety.
LARGE_IMAGES_FROM = 16


def large_images(height: int, width: int) -> bool:
    """Whether `auto` settings treat images of this size as large (`LARGE_IMAGES_FROM`)."""
    return min(height, width) >= LARGE_IMAGES_FROM


class VAEConfig(Strict):
    latent_dim: Positive = 16
    hidden_channels: Positive | Auto = "auto"  # auto: 32 below LARGE_IMAGES_FROM pixels, 64 from it
    epochs: Positive = 150
    batch_size: Positive = 64
    lr: Annotated[float, Field(gt=0, le=1)] = 2e-3
    beta: Annotated[float, Field(ge=0)] = 1.0
    kl_warmup_epochs: Annotated[int, Field(ge=0)] = 20
    free_bits: Annotated[float, Field(ge=0)] = 1.0  # nats per latent dimension the KL may use freely
    best_epoch_by: Literal["objective", "elbo"] = "objective"  # the val criterion of the epoch kept
    likelihood: Literal["bernoulli", "gaussian"] | Auto = "auto"  # auto: bernoulli below LARGE_IMAGES_FROM pixels, gaussian from it
    augment: bool = False
    val_every_n_epochs: Positive = 5  # validation ELBO (early stopping, best epoch) every N epochs
    early_stopping_patience: Annotated[int, Field(ge=0)] = 30  # epochs; 0 turns early stopping off
    sample_every_n_epochs: Annotated[int, Field(ge=0)] = 25  # 0 turns sample grids off
    semi_supervised: bool | Auto = "auto"  # M2 with a q(y|x) head; auto = when there are unlabeled images
    alpha: Annotated[float, Field(gt=0)] = 1.0  # semi-supervised: weight of q(y|x)'s cross-entropy, times N_total / N_labeled
    consistency: Annotated[float, Field(ge=0)] = 3.0  # class-consistency weight: a judge CNN must recognise samples decoded with any label as that label (0 = off)

    def for_images(self, height: int, width: int) -> VAEConfig:
        """These settings with `auto` width and likelihood fixed for images of this size."""
        large = large_images(height, width)
        return self.model_copy(update={
            "hidden_channels": (64 if large else 32) if self.hidden_channels == "auto" else self.hidden_channels,
            "likelihood": ("gaussian" if large else "bernoulli") if self.likelihood == "auto" else self.likelihood,
        })


class GenerateConfig(Strict):
    strategy: Literal["prior", "posterior", "interpolate", "borrow"] | Auto = "auto"
    temperature: Annotated[float, Field(gt=0)] | Auto = "auto"
    per_class: Positive | None = 100  # used when ratio is null
    ratio: Annotated[float, Field(gt=0)] | Auto | None = "auto"  # synthetic per real image; overrides per_class
    min_confidence: Annotated[float, Field(ge=0, le=1)] | Auto = "auto"
    min_nn_distance: Annotated[float, Field(ge=0)] = 0.0
    batch_size: Positive = 1024

    @model_validator(mode="after")
    def _check(self) -> GenerateConfig:
        if self.per_class is None and self.ratio is None:
            raise ValueError("set generate.per_class or generate.ratio")
        return self

    def is_resolved(self) -> bool:
        """True when no knob is left `auto`, i.e. the config can be sampled from."""
        return "auto" not in (self.strategy, self.temperature, self.ratio, self.min_confidence)


class EvaluateConfig(Strict):
    seeds: Annotated[list[int], Field(min_length=1)] = list(range(20))
    train_sizes: Annotated[list[Positive], Field(min_length=1)] = [5, 10]
    classifier: Literal["cnn", "logreg"] = "cnn"
    steps: Positive = 200  # the longest training tried (each arm also tries 1/2 and 1/4 of it on val)
    batch_size: Positive = 64
    lr: Annotated[float, Field(gt=0, le=1)] = 5e-3
    classic_copies: Positive = 10  # albumentations draws per real image in the classic arms (and 30% of it, on val)
    budget: Positive = 6  # settings every arm tries on val (the same for every arm)
    workers: Positive = 2  # processes the learning-curve cells run in; results do not depend on it
    synthetic_weight: Annotated[float, Field(gt=0, le=1)] | Auto = "auto"  # loss weight of a synthetic row
    scenario: Literal["balanced", "imbalanced", "semi_supervised"] = "balanced"  # see pipeline/evaluation/scenarios/
    rare_classes: Positive = 3  # imbalanced: classes drawn per seed to be rare
    common_per_class: Positive = 50  # imbalanced: images of every other class (capped at what the pool has)
    label_noise: Annotated[float, Field(ge=0, le=0.5)] = 0.0  # share of each cell's real labels flipped (seeded per cell)
    clean: Cleaning = "off"  # off | drop | relabel: the `real_cleaned` arm's treatment of the audit's label suspects
    executor: Literal["processes", "ray"] = "processes"  # where cells run (pipeline/evaluation/executors.py); outputs do not depend on it
    ray_address: str | None = None  # ray: None starts a local Ray for the run; "auto", "host:port" or "ray://host:port" joins a cluster
    cell_cpus: Annotated[float, Field(gt=0)] = 1  # ray: CPUs one cell's task asks for
    cell_gpus: Annotated[float, Field(ge=0)] = 0  # ray: GPUs one cell's task asks for (0.25: four cells share a GPU)
    unlabeled_per_class: Positive = 40  # semi_supervised: pool images per class (on average) whose labels no model reads
    val_per_class: Positive | Literal["train_size"] | None = None  # val images per class a cell may use (drawn per seed); null = all
    # semi_supervised: `vae` params its cells' M2 VAEs use instead (M2 needs a z too small to carry
    # the class, docs/semi_supervised.md; fewer epochs keep the scenario within 15 min on 2 cores)
    semi_supervised_vae: dict[str, float | int | str | bool] = {"latent_dim": 4, "free_bits": 0.0, "epochs": 30, "alpha": 3.0}

    @model_validator(mode="after")
    def _check(self) -> EvaluateConfig:
        if self.scenario != "balanced" and (self.clean != "off" or self.label_noise > 0):
            raise ValueError("clean: label noise and cleaning are measured in the balanced scenario only (set clean: off, label_noise: 0)")
        if self.scenario == "imbalanced":
            if max(self.train_sizes) >= self.common_per_class:
                raise ValueError("train_sizes: every size must be below common_per_class in the imbalanced scenario")
            if self.classifier != "cnn":
                raise ValueError("classifier: the imbalanced scenario needs cnn (its logit adjustment trains a CNN)")
        try:
            VAEConfig.model_validate(self.semi_supervised_vae)
        except ValidationError as err:
            raise ValueError(f"semi_supervised_vae.{describe_validation_error(err)}") from None
        return self


class AuditConfig(Strict):
    """The label audit (pipeline/audit/): how it cross-fits, how finely it scores, what it shows."""

    folds: Annotated[int, Field(ge=2, le=20)] = 5  # VAEs, each judging the images it did not train on
    steps: Positive = 600  # optimizer steps of each fold's VAE (at most vae.epochs epochs)
    samples: Positive = 16  # importance samples per image and label: more make the ranking less noisy
    outlier_z: Annotated[float, Field(gt=0)] = 3.5  # robust z of -max_y log p(x | y) against the audited images' out-of-fold bounds
    false_flag_share: Annotated[float, Field(gt=0, lt=1)] = 0.01  # the share of correct labels the label flag may take (expected, calibrated)
    batch_size: Positive = 1024  # images decoded at once (images x samples): bounds memory
    top: Positive = 24  # images of each review queue (label_rank, outlier_rank) shown in the report


class Params(Strict):
    seed: Annotated[int, Field(ge=0)] = 0
    dataset: DatasetConfig = DatasetConfig()
    trainer: TrainerConfig = TrainerConfig()
    vae: VAEConfig = VAEConfig()
    generate: GenerateConfig = GenerateConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    audit: AuditConfig = AuditConfig()

    def cell_vae(self) -> VAEConfig:
        """The `vae` params a learning-curve cell's VAE trains with: the semi-supervised scenario's
        `evaluate.semi_supervised_vae` over `vae`, the other scenarios' `vae` as it is."""
        if self.evaluate.scenario != "semi_supervised":
            return self.vae
        return self.vae.model_copy(update=VAEConfig.model_validate(self.evaluate.semi_supervised_vae).model_dump(exclude_unset=True))

    @model_validator(mode="after")
    def _check(self) -> Params:
        if self.evaluate.cell_gpus > 0 and self.trainer.accelerator == "cpu":
            raise ValueError("evaluate.cell_gpus: a cell given a GPU share must train on it (set trainer.accelerator: gpu or auto)")
        return self


def load_params(path: str | Path = DEFAULT_PARAMS) -> Params:
    """Read and validate params; any problem becomes one line naming the param."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise PipelineError(f"{path}: params file not found") from None
    except yaml.YAMLError as err:
        raise PipelineError(f"{path}: not valid YAML ({err.__class__.__name__})") from None
    if not isinstance(raw, dict):
        raise PipelineError(f"{path}: expected a mapping of param sections")
    params = parse_params(raw, source=str(path))
    try:
        kernels.check(params.trainer.cpu_kernels)
    except ValueError as err:
        raise PipelineError(f"{path}: trainer.cpu_kernels: {params.trainer.cpu_kernels}: {err}") from None
    return params


def parse_params(raw: dict, source: str = "params") -> Params:
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise PipelineError(f"{source}: {describe_validation_error(err)}") from None


def _param_path(loc: tuple) -> str:
    """`generate.temperature` from pydantic's loc, without validator and union-member tags
    (`function-after[...]`, `constrained-float`, `literal['auto']`), which are not params."""
    return ".".join(str(part) for part in loc if not any(mark in str(part) for mark in ("-", "[")))


def describe_validation_error(err: ValidationError) -> str:
    """The first problem as `param.name: message (got value)`; pydantic's own text is multi-line.

    A param that takes a value or `auto` fails once per union member; those failures are one
    problem, so their messages are joined (`Input should be greater than 0, or 'auto'`)."""
    errors = err.errors()
    first = errors[0]
    loc = _param_path(first["loc"])
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown param (misspelt?)"
    for other in errors[1:]:
        if _param_path(other["loc"]) == loc and other["type"] == "literal_error":
            msg += ", or " + other["msg"].removeprefix("Input should be ")
    shown = f" (got {first['input']!r})" if "input" in first and first["type"] != "extra_forbidden" else ""
    if isinstance(first.get("input"), dict):
        shown = ""
    more = len({_param_path(e["loc"]) for e in errors}) - 1
    tail = f"; and {more} more problem(s)" if more else ""
    return f"{loc or 'params'}: {msg}{shown}{tail}"
