"""The report: figures drawn from the run's outputs and the Markdown text from its metrics.

Nothing is hand-written: the verdict, tables and figures are all computed from what the earlier
stages wrote, so the report always matches `reports/metrics.json`. The prose and layout live in
the Jinja2 template `templates/report.md.j2`; this module computes what fills it.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
import yaml

from pipeline.config import Params, large_images
from pipeline.data.imageset import ImageSet
from pipeline.evaluation.arms import BY_NAME, GAIN_ARMS, IMBALANCED_ARMS, NAMES, SEMI_SUPERVISED_ARMS
from pipeline.evaluation.selection import CANDIDATES, arm_grid, back_off, describe, knob_values, show_value
from pipeline.models.cvae import CVAE
from pipeline.reporting import charts, cleaning_section, figures, quality_section, rare_section, selection_tables, semi_section, tables
from pipeline.reporting.training_log import read_live_series
from pipeline.reporting.verdict import answer, diagnosis, headline

TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("pipeline.reporting", "templates"),
    autoescape=False,  # Markdown, not HTML: the HTML writer escapes what it needs
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,  # a misspelt placeholder fails instead of printing nothing
)


# What the ELBO number is: a Bernoulli likelihood on grey levels is not a normalised density.
ELBO_NOTES = {
    "bernoulli": "a Bernoulli bound on grey levels in [0, 1]: comparable between runs, not a log-density in nats",
    "gaussian": "a Gaussian bound with a learned scale: a log-density in nats",
}


def make_figures(
    params: Params, metrics: dict, fig_dir: Path, live_dir: Path, real: ImageSet, val: ImageSet, synthetic: ImageSet, model: CVAE,
    cells: list[dict] | None = None,
) -> None:
    sizes = params.evaluate.train_sizes
    if metrics.get("quality_vs_gain"):
        quality_section.gain_figure(cells or [], metrics["quality_vs_gain"], fig_dir / "quality_vs_gain.png")
    if params.evaluate.scenario == "imbalanced":
        charts.gains(metrics, sizes, [arm.name for arm in IMBALANCED_ARMS[1:]], fig_dir / "gains.png", **rare_section.GAINS_LABELS)
    elif params.evaluate.scenario == "semi_supervised":
        charts.gains(metrics, sizes, [arm.name for arm in SEMI_SUPERVISED_ARMS[1:]], fig_dir / "gains.png", **semi_section.GAINS_LABELS)
    else:
        charts.learning_curve(metrics, sizes, list(NAMES), fig_dir / "learning_curve.png")
        charts.gains(metrics, sizes, list(GAIN_ARMS), fig_dir / "gains.png")
    charts.training_curves(read_live_series(live_dir), fig_dir / "vae_training.png")
    figures.real_vs_synthetic(real, synthetic, fig_dir / "real_vs_synthetic.png")
    figures.reconstructions(model, val, fig_dir / "reconstructions.png")
    figures.latent_map(model, val, fig_dir / "latent_map.png")
    figures.interpolations(model, real, fig_dir / "interpolations.png")


def generation_sentence(gen: dict) -> str:
    if "selection" not in gen:
        return "Sampling settings were fixed in params."
    return f"Sampling settings chosen on val: {describe(gen['selection']['chosen'])}."


def render_markdown(params: Params, metrics: dict, data: dict, vae: dict, gen: dict, per_class: dict, cells: list[dict], audit: dict) -> str:
    """`audit`: the label audit's context, from `audit_section.audit_section`."""
    size = tables.headline_size(params)
    sizes = params.evaluate.train_sizes
    c, h, w = data["image_shape"]
    knobs = knob_values(params, large_images(h, w))
    if params.evaluate.scenario == "imbalanced":  # its own verdict, tables and prose (rare_section.py)
        scenario = rare_section.context(params, metrics, per_class, cells, size, data["class_names"])
    elif params.evaluate.scenario == "semi_supervised":  # semi_section.py
        scenario = semi_section.context(params, metrics, cells, size)
    else:
        scenario = {
            "answer": answer(metrics, size),
            "headline": headline(metrics, size),
            "results_tables": [(s, tables.results_table(metrics, s)) for s in sizes],
            "per_class_table": tables.per_class_table(per_class, size, data["class_names"]),
            "chosen_table": selection_tables.chosen_table(cells),
            "ablation_real_vae": selection_tables.ablation_table(cells, "real_vae"),
            "ablation_real_classic_vae": selection_tables.ablation_table(cells, "real_classic_vae"),
        }
    context = {
        **scenario,
        "imbalanced": params.evaluate.scenario == "imbalanced",
        "semi_supervised": params.evaluate.scenario == "semi_supervised",
        "data": data,
        "classifier": params.evaluate.classifier.upper(),
        "seeds": len(params.evaluate.seeds),
        "size": size,
        "budget": params.evaluate.budget,
        "lengths": " / ".join(map(show_value, knobs["steps"])),
        "lrs": " / ".join(map(show_value, knobs["lr"])),
        "copies": " / ".join(map(show_value, knobs["classic_copies"])),
        "knobs": ", ".join(f"`{k}` {' / '.join(map(show_value, v))}" for k, v in knobs.items() if k in CANDIDATES and k != "synthetic_weight" and len(v) > 1) or "none",
        "weights": " / ".join(map(show_value, knobs["synthetic_weight"])),
        "back_off": back_off_text(params),
        "rare_back_off": back_off_text(params, "vae_rare"),
        "quality_amount": params.generate.per_class or "the chosen number",
        "quality_table": quality_section.quality_table(metrics, sizes),
        "quality_per_class": quality_section.per_class_table(cells, size, data["class_names"]),
        "quality_gain": quality_section.context(metrics, cells),
        "diagnosis": diagnosis(metrics[f"n{size}"]["quality"]),
        "default_size": params.dataset.train_per_class,
        "seed": params.seed,
        "best_elbo": tables.fmt(vae.get("best_val_elbo"), digits=2),
        "best_kl": tables.fmt(vae.get("best_val_kl"), digits=1),
        "best_epoch_by": "objective (reconstruction minus the free-bits KL penalty)" if params.vae.best_epoch_by == "objective" else "ELBO",
        "vae": vae,
        "elbo_note": ELBO_NOTES[params.vae.for_images(h, w).likelihood],
        "generation_sentence": generation_sentence(gen),
        "gen": gen,
        "acceptance": f"{gen['acceptance_rate'] * 100:.0f}",
        "source": params.dataset.source,
        "c": c, "h": h, "w": w,
        "num_classes": len(data["class_names"]),
        "rows_per_split": ", ".join(f"{k} {v}" for k, v in data["rows"].items()),
        "balance": ", ".join(f"{name}: {count}" for name, count in zip(data["class_names"], data["class_counts"]["train"])),
        "params_yaml": params_yaml(params).rstrip(),
        "audit": audit,
        "cleaning": cleaning_section.context(params, metrics, size),
    }
    return TEMPLATES.get_template("report.md.j2").render(context)


def params_yaml(params: Params) -> str:
    return yaml.safe_dump(params.model_dump(mode="json"), sort_keys=False)


def back_off_text(params: Params, arm: str = "real_vae") -> str:
    """What a VAE arm's back-off try changes from its start point, e.g. "`ratio` 1 at
    `synthetic_weight` 0.1"; empty when there is none (every amount pinned at its smallest)."""
    grid = arm_grid(BY_NAME[arm], params)
    setting = back_off(grid)
    if setting is None:
        return ""
    changed = [f"`{k}` {show_value(setting[k])}" for k in ("ratio", "synthetic_weight") if k in setting and setting[k] != grid[0][k]]
    return " at ".join(changed)
