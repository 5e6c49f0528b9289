"""The benchmark's JSON as rich tables, one per question, for a person at a terminal."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from pipeline.bench.training import TARGET_RATIO


def _table(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for row in rows:
        table.add_row(*row)
    return table


def _training_rows(t: dict) -> list[tuple[str, str]]:
    verdict = "meets" if t["lightning_vs_plain_ratio"] >= TARGET_RATIO else "below"
    rows = [
        ("images x epochs", f"{t['images']:,} x {t['epochs']}, {t['steps_per_epoch']} steps of {t['batch_size']} per epoch"),
        ("torch threads", str(t["torch_threads"])),
        ("Lightning", f"{t['lightning_samples_per_s']:,.0f} samples/s"),
        ("plain PyTorch loop", f"{t['plain_samples_per_s']:,.0f} samples/s"),
        ("Lightning / plain, wall clock", f"{t['lightning_vs_plain_ratio']:.2f} ({verdict} the {TARGET_RATIO} target)"),
        ("... fastest run of each", f"{t['lightning_vs_plain_ratio_best_runs']:.2f}"),
        ("Lightning / plain, CPU seconds", f"{t['lightning_vs_plain_cpu_ratio']:.2f}"),
        ("plain loop, CPU per step", f"{t['plain_cpu_ms_per_step']:.2f} ms"),
        ("Lightning's extra CPU per step", f"{t['lightning_overhead_cpu_ms_per_step']:.2f} ms"),
    ]
    if "profile" in t:
        rows += [(f"cProfile: {key}", f"{value:.2f}") for key, value in t["profile"].items() if key.endswith("_s")]
        rows.append(("cProfile: top Lightning functions", "\n".join(t["profile"]["top_lightning_functions"])))
    return rows


def _generation_rows(generation: list[dict]) -> list[tuple[str, str]]:
    return [
        (f"{g['samples']:,} samples", f"{g['images_per_s']:,.0f} images/s, peak {g['peak_rss_mib']:,.0f} MiB "
         f"({g['start_rss_mib']:,.0f} before sampling), file {g['file_mib']:.1f} MiB")
        for g in generation
    ]


def _mnist_rows(m: dict) -> list[tuple[str, str]]:
    pre, gen, path = m["preprocess"], m["generate"], m["data_path"]
    return [
        ("preprocess", f"{pre['wall_s']:.1f} s, peak {pre['peak_rss_mib']:,.0f} MiB (target <= 2,048)"),
        (f"generate {gen['samples']:,}", f"{gen['images_per_s']:,.0f} images/s, peak {gen['peak_rss_mib']:,.0f} MiB"),
        (f"read pool Parquet ({path['train_images']:,} rows)", f"{path['read_s']:.2f} s, {path['read_images_per_s']:,.0f} images/s"),
        ("... PNG decodes", f"{path['png_decodes_reading']:,}"),
        ("DataLoader alone", f"{path['loader_samples_per_s']:,.0f} samples/s"),
        ("VAE training", f"{path['training_samples_per_s']:,.0f} samples/s"),
        ("... PNG decodes", str(path["png_decodes_training"])),
        ("reading / (reading + 1st epoch)", f"{path['read_share_of_first_epoch']:.1%}"),
        ("peak memory, read + train", f"{path['peak_rss_mib']:,.0f} MiB"),
    ]


def _fig(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def audit_table(audit: dict) -> Table:
    """The audit's and cleanlab's figures side by side, one row per method and run: on clean labels
    the shares flagged, on faulty ones the detection figures too. At k = the number of faults
    precision and recall are equal, so one column shows both."""
    t = audit["targets"]
    table = Table(title=f"Label audit, out of fold ({audit['folds']} folds, {audit['steps']} steps per fold VAE, "
                  f"{audit['samples']} importance samples; k = number of faults)", title_justify="left",
                  caption=f"targets: clean flagged <= {t['clean_label_flag_share_max']:.0%} labels, <= {t['clean_outlier_flag_share_max']:.0%} outliers; "
                  f"flips AUROC >= {t['flip_auroc_min']}, P@k >= {t['flip_precision_at_k_min']}; outliers AUROC >= {t['outlier_auroc_min']}. "
                  "cleanlab: find_label_issues on out-of-fold probabilities of a logistic regression on pixels (the same folds); "
                  "OutOfDistribution by kNN on pixels, or on those probabilities (last row)", caption_justify="left")
    for name in ("case, flipped", "method", "labels flagged", "expected clean", "flips P@k", "AUROC", "flag precision",
                 "outliers flagged", "outliers P@k", "AUROC", "by kind n/i/g", "time"):
        table.add_column(name, justify="left" if name in ("case, flipped", "method") else "right")
    for run in audit["runs"]:
        methods = [("VAE audit", run["vae"], "outliers")]
        if "cleanlab" in run:
            methods += [("cleanlab", run["cleanlab"], "outliers_features"), ("cleanlab OOD probs", run["cleanlab"], "outliers_probs")]
        for i, (name, figures, outliers) in enumerate(methods):
            flips, out = figures["flips"], figures.get(outliers, {})
            label_cols = [f"{flips['flagged']} ({flips['flagged_share']:.1%})", f"{run['expected_clean_flag_share']:.1%}" if i == 0 else "",
                          _fig(flips.get("precision_at_k")), _fig(flips.get("auroc")), _fig(flips.get("flagged_precision"))] if i < 2 else [""] * 5
            table.add_row(
                _run_name(run) if i == 0 else "", name, *label_cols,
                f"{out['flagged']} ({out['flagged_share']:.1%})" if "flagged" in out else "",
                _fig(out.get("precision_at_k")), _fig(out.get("auroc")),
                "/".join("-" if v is None else f"{v:.2f}" for v in out["auroc_by_kind"].values()) if "auroc_by_kind" in out else "",
                f"{run['audit_s']:.0f} s" if i == 0 else "",
            )
    return table


def _run_name(run: dict) -> str:
    return f"{run['case']}, {run['flip_share']:.0%} ({run['flipped']})"


def ranking_table(audit: dict) -> Table:
    """Every ranking of the audit file on both kinds of fault (faulty runs), cleanlab's scores beside them."""
    table = Table(title="The audit file's rankings on injected faults (k = number of faults; outliers among all images, "
                  "flips among the original ones)", title_justify="left",
                  caption="cleanlab: label quality / kNN OOD on pixels", caption_justify="left")
    for name in ("case, flipped", "ranking", "flips P@k", "AUROC", "outliers P@k", "AUROC"):
        table.add_column(name, justify="left" if name in ("case, flipped", "ranking") else "right")
    for run in (r for r in audit["runs"] if "rankings" in r):
        rows = list(run["rankings"].items())
        if "cleanlab" in run:
            rows.append(("cleanlab", {"flips": run["cleanlab"]["flips"], "outliers": run["cleanlab"]["outliers_features"]}))
        for i, (name, f) in enumerate(rows):
            table.add_row(
                _run_name(run) if i == 0 else "", name, _fig(f["flips"]["precision_at_k"]), f"{f['flips']['auroc']:.4f}",
                _fig(f["outliers"]["precision_at_k"]), f"{f['outliers']['auroc']:.4f}",
            )
    return table


def render_audit(results: dict, console: Console) -> None:
    """The audit tables alone (`--only-audit`), with their note and the machine line."""
    console.print(audit_table(results["audit"]))
    console.print(ranking_table(results["audit"]))
    console.print(f"cleanlab: {results['audit']['cleanlab']}; targets: {results['audit']['targets']}")
    _machine_lines(results, console)


def render(results: dict, console: Console) -> None:
    console.print(_table("VAE training, digits pool tiled", _training_rows(results["training"])))
    console.print(_table("VAE training, digits pool tiled, one thread", _training_rows(results["training_one_thread"])))
    console.print(_table("VAE training, default train set, one thread", _training_rows(results["training_small_data"])))
    fits = results["classifier_fits"]
    console.print(_table("Learning-curve classifiers (8x8 digits, one plain torch loop)", [
        ("batched", f"{fits['batched_s']:.1f} s"),
        ("one at a time", f"{fits['one_at_a_time_s']:.1f} s"),
        ("batched_fit_speedup", f"{fits['batched_fit_speedup']:.2f}x"),
    ]))
    title = "Generation into Parquet (the generate stage, untrained CVAE, 8x8)"
    console.print(_table(title, _generation_rows(results["generation"])))
    if results["dag"] is not None:
        console.print(_table(f"DAG stages ({results['mode']} params)", [
            (s["stage"], f"{s['wall_s']:.1f} s, peak {s['peak_rss_mib']:,.0f} MiB") for s in results["dag"]
        ]))
    console.print(_table(f"MNIST-sized: {results['mnist']['images']:,} images of 28x28", _mnist_rows(results["mnist"])))
    if results.get("audit"):
        console.print(audit_table(results["audit"]))
        console.print(ranking_table(results["audit"]))
        console.print(f"cleanlab: {results['audit']['cleanlab']}")
    if results.get("cluster"):
        console.print(render_cluster(results["cluster"]))
    if results.get("cells"):
        console.print(render_cells(results["cells"]))
    _machine_lines(results, console)


def render_cells(cells: list[dict]) -> Table:
    table = Table(title="One learning-curve cell, one thread, seed 0", title_justify="left")
    for column in ("case", "per class", "wall", "CPU", "of it the VAE", "peak memory", "label fidelity", "assessor (once per run)"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for c in cells:
        table.add_row(
            c["case"], str(c["size"]), f"{c['wall_s']:.1f} s", f"{c['cpu_s']:.1f} s", f"{c['vae_s']:.1f} s",
            f"{c['peak_rss_mib']:,.0f} MiB", f"{c['label_fidelity']:.2f}", f"{c['assessor_s']:.1f} s",
        )
    return table


def render_cluster(c: dict) -> Table | str:
    if "skipped" in c:
        return f"cluster: skipped ({c['skipped']})"
    rows = [
        ("cells", f"{c['cells']} ({c['seeds']} seeds x sizes {c['train_sizes']} + whole-pool fits), {c['workers']} workers"),
        ("processes", f"{c['processes_wall_s']:.1f} s"),
        ("ray (local instance, start and stop included)", f"{c['ray_wall_s']:.1f} s (start {c['ray_start_s']:.1f} s)"),
        ("ray_vs_processes_ratio", f"{c['ray_vs_processes_ratio']:.2f} (target <= 1.15)"),
        ("ray_task_overhead_s", f"{c['ray_task_overhead_s']:.3f} s per task"),
        ("Ray's own memory / its workers'", f"{c['ray_memory_mib']['ray_own']:,.0f} / {c['ray_memory_mib']['workers']:,.0f} MiB"),
        *((f"CPU seconds per cell, {key}", f"{value:.1f} s") for key, value in c["cpu_seconds_per_cell"]["ray"].items()),
    ]
    for run, p in c["projection"].items():
        rows.append((f"projected {run} ({p['cells']} cells)", ", ".join(f"{k.removesuffix('_s').replace('_', ' ')}: {v:.0f} s" for k, v in p.items() if k != "cells")))
    return _table("Learning-curve cells: processes vs Ray, and projected on a cluster", rows)


def _machine_lines(results: dict, console: Console) -> None:
    m = results["machine"]
    console.print(f"{m['platform']}, {m['cpu_count']} CPUs, torch {m['torch']}, {m['date']}")
    load = f"load average (1 min) {m['load_average_1m']:.1f} at the start, {m['load_average_1m_end']:.1f} at the end"
    console.print(f"{load}: well above 0 means other work shared the CPUs and slowed every timing")
