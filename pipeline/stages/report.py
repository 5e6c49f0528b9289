"""Stage 5: a Markdown and a self-contained HTML report, regenerated from the metrics files.

The text and figures come from `pipeline/reporting/` (the template is
`pipeline/reporting/templates/report.md.j2`); this stage reads the earlier stages' outputs and
writes `report.md`, `report.html`, `run_params.yaml` and `figures/`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipeline import lifecycle
from pipeline.atomic import write_text
from pipeline.config import Params, load_params
from pipeline.data.parquet import read_imageset
from pipeline.errors import PipelineError, cli_guard
from pipeline.models.vae import load_cvae
from pipeline.reporting.audit_section import audit_section
from pipeline.reporting.html import to_html
from pipeline.reporting.report import make_figures, params_yaml, render_markdown
from pipeline.stages._cli import stage_parser


def read_json(path: Path) -> dict:
    if not path.exists():
        raise PipelineError(f"{path}: not found (run the stage that writes it first)")
    return json.loads(path.read_text(encoding="utf-8"))


def run(params: Params, paths: argparse.Namespace) -> str:
    reports = paths.reports_dir
    metrics = read_json(reports / "metrics.json")
    data, gen, vae = read_json(reports / "data.json"), read_json(reports / "generate.json"), read_json(reports / "vae" / "metrics.json")
    evaluation = read_json(reports / "evaluation.json")
    make_figures(
        params, metrics, reports / "figures", reports / "vae" / "plots" / "metrics",
        real=read_imageset(paths.data_dir / "train.parquet"), val=read_imageset(paths.data_dir / "val.parquet"),
        synthetic=read_imageset(paths.synthetic), model=load_cvae(paths.model).model, cells=evaluation["cells"],
    )
    audit = audit_section(paths.audit, read_json(reports / "audit.json"), params.audit.top, reports / "figures" / "audit_suspects.png")
    text = render_markdown(params, metrics, data, vae, gen, evaluation["per_class_acc"], evaluation["cells"], audit)
    # The params next to the numbers, so a copied report folder still says what produced it.
    write_text(reports / "run_params.yaml", params_yaml(params))
    write_text(reports / "report.md", text)
    write_text(reports / "report.html", to_html(text, reports))
    return text


@cli_guard
@lifecycle.stage
def main(argv: list[str] | None = None) -> None:
    paths = {
        "reports_dir": "reports", "data_dir": "data/processed", "synthetic": "data/synthetic/train.parquet",
        "model": "models/cvae.ckpt", "audit": "data/audit/train.parquet",
    }
    args = stage_parser(__doc__, **paths).parse_args(argv)
    answer = run(load_params(args.params), args).split("\n\n")[1]
    print(answer.strip("*"))


if __name__ == "__main__":
    main()
