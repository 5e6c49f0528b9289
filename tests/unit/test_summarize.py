"""`python -m pipeline.tools.summarize` on tiny real and synthetic files: counts, provenance, grid, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.data.images import auto_scale
from pipeline.data.imageset import ImageSet
from pipeline.tools.summarize import main
from pipeline.data.parquet import ImageParquetWriter, write_imageset
from tests import datagen as dg

NAMES = dg.class_names(3)
SIZE = 8


def run_json(capsys: pytest.CaptureFixture, *argv: str) -> dict:
    main([*argv, "--json"])
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def real_file(tmp_path: Path) -> tuple[Path, ImageSet]:
    images, labels = dg.make_images(num_classes=3, per_class=4, size=SIZE)
    data = ImageSet(images, labels, NAMES)
    path = tmp_path / "train.parquet"
    write_imageset(path, data)
    return path, data


@pytest.fixture
def synthetic_file(tmp_path: Path) -> Path:
    """Two writes (two row groups) with different settings; class 2 never generated."""
    images, _ = dg.make_images(num_classes=1, per_class=5, size=SIZE)
    path = tmp_path / "synthetic.parquet"
    with ImageParquetWriter(path, NAMES, (1, SIZE, SIZE), synthetic=True) as writer:
        common = {"checkpoint": "abc123", "strategy": "prior"}
        confidence = np.array([np.nan, 0.9, 0.5])
        writer.write(images[:3], np.array([0, 0, 1]), {**common, "temperature": 1.0, "seed": 0, "confidence": confidence, "nn_distance": np.array([0.2, 0.4, 0.6])})
        writer.write(images[3:], np.array([1, 0]), {**common, "temperature": 0.5, "seed": 1, "confidence": np.array([0.7, np.nan]), "nn_distance": np.array([1.0, 0.8])})
    return path


def test_real_file_summary_counts_rows_per_class(real_file, tmp_path: Path, capsys) -> None:
    path, _ = real_file
    summary = run_json(capsys, str(path), "--grid", str(tmp_path / "g.png"))
    assert summary["rows"] == 12
    assert summary["class_names"] == list(NAMES)
    assert summary["image_shape"] == [1, SIZE, SIZE]
    assert summary["rows_per_source"] == {"real": 12}
    assert summary["rows_per_class"] == {name: {"real": 4} for name in NAMES}
    assert summary["provenance"] == {} and summary["quality"] == {}


def test_grid_has_one_row_per_class_of_the_first_images(real_file, tmp_path: Path, capsys) -> None:
    path, data = real_file
    grid_path = tmp_path / "out" / "grid.png"
    run_json(capsys, str(path), "--grid", str(grid_path), "--per-class", "3")
    picture = np.asarray(Image.open(grid_path).convert("L"))
    scale = auto_scale(SIZE)
    tile_width = (3 * (SIZE + 1) + 1) * scale  # 3 images, 1-pixel white padding, enlarged
    assert picture.shape[0] == (3 * (SIZE + 1) + 1) * scale
    margin = picture.shape[1] - tile_width  # the class names column on the left
    assert 0 < margin < 200
    for k in range(3):  # column 2 of row k is the third image of class k
        top, left = scale * (1 + k * (SIZE + 1)), margin + scale * (1 + 2 * (SIZE + 1))
        shown = picture[top : top + SIZE * scale : scale, left : left + SIZE * scale : scale]
        assert np.array_equal(shown, data.images[data.labels == k][2][..., 0])


def test_default_grid_sits_next_to_the_input(real_file, capsys) -> None:
    path, _ = real_file
    summary = run_json(capsys, str(path))
    assert summary["grid"] == str(path.with_name("train_grid.png"))
    assert path.with_name("train_grid.png").is_file()


def test_synthetic_summary_has_provenance_and_nan_aware_quality(synthetic_file: Path, tmp_path: Path, capsys) -> None:
    summary = run_json(capsys, str(synthetic_file), "--grid", str(tmp_path / "g.png"))
    assert summary["rows_per_source"] == {"synthetic": 5}
    assert summary["rows_per_class"] == {NAMES[0]: {"synthetic": 3}, NAMES[1]: {"synthetic": 2}, NAMES[2]: {"synthetic": 0}}
    prov = summary["provenance"]
    assert prov["checkpoint"] == {"unique": ["abc123"], "count": 1}
    assert prov["strategy"] == {"unique": ["prior"], "count": 1}
    assert prov["temperature"] == {"unique": [0.5, 1.0], "count": 2}
    assert prov["seed"] == {"unique": [0, 1], "count": 2}
    assert summary["quality"]["confidence"] == {"min": 0.5, "median": 0.7, "max": 0.9, "nan": 2}
    assert summary["quality"]["nn_distance"] == {"min": 0.2, "median": 0.6, "max": 1.0, "nan": 0}


def test_synthetic_grid_pads_missing_images_with_white(synthetic_file: Path, tmp_path: Path, capsys) -> None:
    run_json(capsys, str(synthetic_file), "--grid", str(tmp_path / "g.png"), "--per-class", "4")
    picture = np.asarray(Image.open(tmp_path / "g.png").convert("L"))
    scale = auto_scale(SIZE)
    assert picture.shape[0] == (3 * (SIZE + 1) + 1) * scale
    last_row = picture[scale * (1 + 2 * (SIZE + 1)) :, -(4 * (SIZE + 1)) * scale :]  # class 2: no samples
    assert (last_row == 255).all()


def test_table_output_names_classes_and_sources(synthetic_file: Path, tmp_path: Path, capsys) -> None:
    main([str(synthetic_file), "--grid", str(tmp_path / "g.png")])
    out = capsys.readouterr().out
    assert all(name in out for name in NAMES)
    assert "synthetic" in out and "abc123" in out and "nn_distance" in out


@pytest.mark.parametrize("content", [None, b"not parquet"])
def test_missing_or_invalid_file_is_one_line_and_exit_2(tmp_path: Path, capsys, content: bytes | None) -> None:
    path = tmp_path / "data.parquet"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SystemExit) as exit_info:
        main([str(path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and str(path) in err
    assert not path.with_name("data_grid.png").exists()


def test_quality_against_real_images_gives_the_suite_and_needs_real(real_file, tmp_path: Path, capsys) -> None:
    """Real images measured as samples against themselves: nothing tells them apart, and each is a
    copy of a training image (authenticity 0); without --holdout the unseen-image metrics are absent."""
    path, data = real_file
    params = tmp_path / "params.yaml"
    params.write_text("evaluate:\n  steps: 3\ntrainer:\n  progress_bar: false\n")
    grid = ("--grid", str(tmp_path / "g.png"), "--params", str(params))
    summary = run_json(capsys, str(path), "--quality", "--real", str(path), *grid)
    quality = summary["sample_quality"]
    assert quality["authenticity"] == 0.0
    assert quality["identifiability"] is None and quality["memorisation_ratio"] is None  # JSON null: not given
    assert quality["assessor_accuracy"] is None  # the assessor's own training images say nothing of it
    assert len(quality["per_class"]["detection_auroc"]) == len(NAMES)
    holdout = tmp_path / "holdout.parquet"
    images, labels = dg.make_images(num_classes=3, per_class=6, size=SIZE, seed=5)
    write_imageset(holdout, ImageSet(images, labels, NAMES))
    with_holdout = run_json(capsys, str(path), "--quality", "--real", str(path), "--holdout", str(holdout), *grid)["sample_quality"]
    assert with_holdout["identifiability"] == 1.0  # copies of the training images, closer than any unseen one
    assert 0.0 <= with_holdout["assessor_accuracy"] <= 1.0
    with pytest.raises(SystemExit) as exit_info:
        main([str(path), "--quality", *grid])
    assert exit_info.value.code == 2 and capsys.readouterr().err.startswith("error: --quality needs --real")
