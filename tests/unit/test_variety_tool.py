"""`python -m pipeline.tools.variety`: VAE settings and strategies side by side, test never read."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.config import Params
from pipeline.tools import variety
from tests.unit.conftest import TINY


def test_one_row_per_setting_and_strategy_with_every_metric(tiny_params: Params, digits_dir: Path) -> None:
    rows = variety.run(tiny_params, digits_dir, ["params", "free_bits=0,best_epoch_by=elbo"], size=3, seeds=[0], strategies=["prior", "borrow"], temperature=1.0)
    assert [(r["vae"], r["strategy"]) for r in rows] == [
        ("params", "prior"), ("params", "borrow"), ("free_bits=0,best_epoch_by=elbo", "prior"), ("free_bits=0,best_epoch_by=elbo", "borrow"),
    ]
    for row in rows:
        assert 0.0 <= row["label_fidelity"] <= 1.0 and 0.0 <= row["coverage"] <= 1.0
        assert row["diversity_ratio"] > 0.0


def test_the_test_split_is_not_read(tiny_params: Params, digits_dir: Path, tmp_path: Path) -> None:
    for name in ("pool", "val"):
        (tmp_path / f"{name}.parquet").write_bytes((digits_dir / f"{name}.parquet").read_bytes())
    (tmp_path / "test.parquet").write_bytes(b"not parquet")  # reading it would fail loudly
    rows = variety.run(tiny_params, tmp_path, ["params"], size=3, seeds=[0], strategies=["prior"], temperature=1.0)
    assert len(rows) == 1


@pytest.mark.parametrize("spec", ["free_bits", "free_bits=-1", "no_such_knob=1"])
def test_a_bad_setting_is_one_line_naming_it(spec: str, tmp_path: Path, digits_dir: Path, capsys: pytest.CaptureFixture) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(TINY))
    with pytest.raises(SystemExit) as exit_info:
        variety.main(["--params", str(params), "--data-dir", str(digits_dir), "--vae", spec])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code != 0 and len(err.splitlines()) == 1 and "--vae" in err
