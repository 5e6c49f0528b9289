"""Stage 5: a Markdown and a self-contained HTML report, regenerated from the metrics files.

Nothing here is hand-written: the verdict, tables and figures are all computed from what the
earlier stages wrote, so the report always matches `reports/metrics.json`.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import yaml

from pipeline import charts, choices, figures
from pipeline.atomic import write_text
from pipeline.config import Params, load_params
from pipeline.errors import PipelineError, cli_guard
from pipeline.generate import load_cvae
from pipeline.markup import to_html
from pipeline.parquet import read_imageset
from pipeline.protocol import ARMS
from pipeline.selection import CANDIDATES, describe, show_value
from pipeline.verdict import answer, diagnosis, headline

QUALITY_COLUMNS = {
    "label_fidelity": "label fidelity",
    "fd": "Fréchet dist.",
    "precision": "precision",
    "recall": "recall",
    "density": "density",
    "coverage": "coverage",
    "memorisation_ratio": "memorisation ratio",
    "near_copy_rate": "near-copy rate",
}


def read_json(path: Path) -> dict:
    if not path.exists():
        raise PipelineError(f"{path}: not found (run the stage that writes it first)")
    return json.loads(path.read_text(encoding="utf-8"))


def headline_size(params: Params) -> int:
    """The size the verdict talks about: the default training size if the curve has it."""
    sizes = params.evaluate.train_sizes
    return params.dataset.train_per_class if params.dataset.train_per_class in sizes else min(sizes)


def fmt(value: float | None, pct: bool = False, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    return f"{value * 100:.1f}" if pct else f"{value:.{digits}f}"


def fmt_ci(entry: dict, prefix: str, signed: bool = False) -> str:
    mean, lo, hi = entry[f"{prefix}_mean"], entry[f"{prefix}_lo"], entry[f"{prefix}_hi"]
    sign = "+" if signed else ""
    if lo is None:
        return f"{mean * 100:{sign}.1f}"
    return f"{mean * 100:{sign}.1f} [{lo * 100:{sign}.1f}, {hi * 100:{sign}.1f}]"


def results_table(metrics: dict, size: int) -> str:
    block = metrics[f"n{size}"]
    lines = [
        "| arm | accuracy % [95% CI] | macro-F1 % | gain over real (points) | gain over classic (points) | gap to full closed |",
        "|---|---|---|---|---|---|",
    ]
    for arm in ARMS:
        e = block[arm]
        gain = fmt_ci(e, "gain", signed=True) if "gain_mean" in e else "—"
        vs_classic = fmt_ci(e, "gain_vs_classic", signed=True) if "gain_vs_classic_mean" in e else "—"
        closed = f"{e['gap_closed'] * 100:.0f}%" if e.get("gap_closed") is not None else "—"
        lines.append(f"| {charts.ARM_LABELS[arm]} | {fmt_ci(e, 'acc')} | {fmt(e['f1_mean'], pct=True)} | {gain} | {vs_classic} | {closed} |")
    lines.append(f"| {charts.ARM_LABELS['full']} | {fmt_ci(metrics['full'], 'acc')} | {fmt(metrics['full']['f1_mean'], pct=True)} | — | — | 100% |")
    return "\n".join(lines)


def per_class_table(per_class: dict, size: int, class_names: list[str]) -> str:
    block = per_class[f"n{size}"]
    lines = ["| class | " + " | ".join(charts.ARM_LABELS[arm] for arm in ARMS) + " |", "|---" * (len(ARMS) + 1) + "|"]
    for i, name in enumerate(class_names):
        lines.append(f"| {name} | " + " | ".join(fmt(block[arm][i], pct=True) for arm in ARMS) + " |")
    return "\n".join(lines)


def quality_table(metrics: dict, sizes: list[int]) -> str:
    lines = ["| images per class | " + " | ".join(QUALITY_COLUMNS.values()) + " |", "|---" * (len(QUALITY_COLUMNS) + 1) + "|"]
    for size in sizes:
        q = metrics[f"n{size}"]["quality"]
        lines.append(f"| {size} | " + " | ".join(fmt(q[k], digits=2 if k == "fd" else 3) for k in QUALITY_COLUMNS) + " |")
    return "\n".join(lines)


def read_live_series(plots_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """dvclive's per-epoch TSVs (step, value) mapped to epochs via its epoch.tsv."""
    series = {}
    epoch_of_step = {}
    epoch_file = plots_dir / "epoch.tsv"
    if epoch_file.exists():
        for row in csv.DictReader(epoch_file.open(), delimiter="\t"):
            epoch_of_step[row["step"]] = int(float(row["epoch"])) + 1
    for split in ("train", "val"):
        for tsv in sorted((plots_dir / split).glob("*.tsv")):
            rows = list(csv.DictReader(tsv.open(), delimiter="\t"))
            epochs = np.array([epoch_of_step.get(r["step"], int(r["step"])) for r in rows])
            values = np.array([float(r[next(k for k in r if k not in ("step", "timestamp"))]) for r in rows])
            series[f"{split}/{tsv.stem}"] = (epochs, values)
    return series


def make_figures(params: Params, metrics: dict, paths: argparse.Namespace) -> None:
    fig_dir = paths.reports_dir / "figures"
    sizes = params.evaluate.train_sizes
    charts.learning_curve(metrics, sizes, list(ARMS), fig_dir / "learning_curve.png")
    charts.gains(metrics, sizes, ["real_classic", "real_vae", "real_classic_vae"], fig_dir / "gains.png")
    charts.training_curves(read_live_series(paths.reports_dir / "vae" / "plots" / "metrics"), fig_dir / "vae_training.png")
    train, val = read_imageset(paths.data_dir / "train.parquet"), read_imageset(paths.data_dir / "val.parquet")
    synthetic = read_imageset(paths.synthetic)
    figures.real_vs_synthetic(train, synthetic, fig_dir / "real_vs_synthetic.png")
    model = load_cvae(paths.model).model
    figures.reconstructions(model, val, fig_dir / "reconstructions.png")
    figures.latent_map(model, val, fig_dir / "latent_map.png")
    figures.interpolations(model, train, fig_dir / "interpolations.png")


def selection_section(cells: list[dict]) -> str:
    knobs = ", ".join(f"`{knob}` {' / '.join(map(show_value, values))}" for knob, values in CANDIDATES.items())
    return f"""## Settings chosen on validation data

Knobs set to `auto` in params are chosen per cell and per VAE arm on the `val` split, one knob at
a time in this order, each over its candidates (first = start point): {knobs}. A value replaces the
current one only if its validation accuracy is strictly higher. `test` is scored once, afterwards.

{choices.chosen_table(cells)}

A chosen setting's val gain is optimistic, being the best of several tries on the same images; its
unbiased effect is the test gain in the learning-curve tables above.

What each tried value scored: validation accuracy minus the arm's baseline on val (points, mean
over the seeds that tried it, count in brackets), each tried with the earlier knobs at their
chosen values. Real + VAE samples, baseline real only:

{choices.ablation_table(cells, "real_vae")}

Real + classic + VAE, baseline real + classic:

{choices.ablation_table(cells, "real_classic_vae")}
"""


def generation_sentence(gen: dict) -> str:
    if "selection" not in gen:
        return "Sampling settings were fixed in params."
    return f"Sampling settings chosen on val: {describe(gen['selection']['chosen'])}."


def render_markdown(params: Params, metrics: dict, data: dict, vae: dict, gen: dict, per_class: dict, cells: list[dict]) -> str:
    size = headline_size(params)
    sizes = params.evaluate.train_sizes
    seeds = params.evaluate.seeds
    tables = "\n\n".join(f"### {s} real images per class\n\n{results_table(metrics, s)}" for s in sizes)
    balance = ", ".join(f"{name}: {count}" for name, count in zip(data["class_names"], data["class_counts"]["train"]))
    c, h, w = data["image_shape"]
    return f"""# Does generative augmentation help this classifier?

**{answer(metrics, size)}**

{headline(metrics, size)}

Measured on the held-out `test` split ({data['rows']['test']} images, never seen by any model nor
used to choose anything), {params.evaluate.classifier.upper()} classifier, {len(seeds)} seeds per
cell; intervals are 95% Student-t intervals over seeds, gains are paired by seed.

## Learning curve

![Learning curve](figures/learning_curve.png)

![Gains](figures/gains.png)

{tables}

Gap closed: the share of the distance from *real only* to the *whole pool* upper bound that an arm
covers. Every arm trains for the same {params.evaluate.steps} optimizer steps, so differences come
from the data, not from longer training.

Test accuracy per class at {size} images per class (%, mean over seeds):

{per_class_table(per_class, size, data["class_names"])}

{selection_section(cells)}
## Quality of the synthetic images

Measured in the feature space of a CNN trained on the cell's real images only, against real pool
images no model in the cell saw. Label fidelity: share of samples that CNN assigns to their
conditioned class. Precision/density: are samples realistic; recall/coverage: do they cover the
real variety. Memorisation ratio: median pixel distance of a sample to its nearest training image
over that of a new real image (below 1: closer to the training images than new data is). Measured
on {params.generate.per_class or "the chosen number of"} samples per class drawn with the settings chosen for
*real + VAE*, the same amount at every size, because recall and coverage depend on how many
samples there are.

{quality_table(metrics, sizes)}

At {size} images per class, {diagnosis(metrics[f"n{size}"]["quality"])}

## What the VAE learned (default run: {params.dataset.train_per_class} images per class, seed {params.seed})

Best validation ELBO {fmt(vae.get('best_val_elbo'), digits=2)} nats per image at epoch
{vae.get('best_epoch')}. {generation_sentence(gen)} Generation kept {gen['rows']} of {gen['drawn']} drawn samples
({gen['acceptance_rate'] * 100:.0f}%; {gen['rejected_confidence']} rejected by the confidence filter,
{gen['rejected_near_copy']} as near-copies).

![VAE training curves](figures/vae_training.png)

Real training images (left) and synthetic samples (right), one row per class:

![Real vs synthetic](figures/real_vs_synthetic.png)

Validation images (top) and their reconstructions (bottom):

![Reconstructions](figures/reconstructions.png)

The label is given to the decoder, so the latent space only needs to hold *style* (slant,
thickness): classes overlapping in this map is expected. Well-separated class clusters would mean
the latent duplicates the label; points piled at the centre with a tiny KL in the training curves
mean the VAE ignores its latent and samples little more than class averages.

![Latent map](figures/latent_map.png)

Interpolation between two training images of each class:

![Interpolations](figures/interpolations.png)

## Data

Source `{params.dataset.source}`, images {h}x{w} with {c} channel(s), {len(data['class_names'])} classes.
Rows per split: {', '.join(f"{k} {v}" for k, v in data['rows'].items())}.
Default training set per class: {balance}.

## Params of this run

```yaml
{yaml.safe_dump(params.model_dump(mode='json'), sort_keys=False).rstrip()}
```
"""


def run(params: Params, paths: argparse.Namespace) -> str:
    reports = paths.reports_dir
    metrics = read_json(reports / "metrics.json")
    data, gen, vae = read_json(reports / "data.json"), read_json(reports / "generate.json"), read_json(reports / "vae" / "metrics.json")
    make_figures(params, metrics, paths)
    evaluation = read_json(reports / "evaluation.json")
    text = render_markdown(params, metrics, data, vae, gen, evaluation["per_class_acc"], evaluation["cells"])
    # The params next to the numbers, so a copied report folder still says what produced it.
    write_text(reports / "run_params.yaml", yaml.safe_dump(params.model_dump(mode="json"), sort_keys=False))
    write_text(reports / "report.md", text)
    write_text(reports / "report.html", to_html(text, reports))
    return text


@cli_guard
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--reports-dir", type=Path, default=Path("reports"))
    parser.add_argument("--data-dir", type=Path, default=Path("data/processed"))
    parser.add_argument("--synthetic", type=Path, default=Path("data/synthetic/train.parquet"))
    parser.add_argument("--model", type=Path, default=Path("models/cvae.ckpt"))
    args = parser.parse_args(argv)
    params = load_params(args.params)
    text = run(params, args)
    print(text.split("\n\n")[1].strip("*"))


if __name__ == "__main__":
    main()
