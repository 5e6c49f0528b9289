"""The hard 28x28 letters (issue #27): a development and test set where 10 images per class are
far from enough, written deterministically as a user's image folder."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from pipeline.bench.letters import LETTERS, main
from pipeline.config import parse_params
from pipeline.data.parquet import read_imageset
from pipeline.data.splits import per_class_subset
from pipeline.evaluation.scoring import score
from pipeline.models.classify import TrainingRows, fit_classifier
from pipeline.stages.preprocess import run as preprocess


def digest(folder: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(folder.rglob("*.png")))).hexdigest()


def test_the_same_seed_writes_the_same_bytes_and_another_seed_other_images(tmp_path: Path, capsys) -> None:
    main([str(tmp_path / "a"), "--hard", "--per-class", "3"])
    main([str(tmp_path / "b"), "--hard", "--per-class", "3"])
    main([str(tmp_path / "c"), "--hard", "--per-class", "3", "--seed", "1"])
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(LETTERS)
    assert len(list((tmp_path / "a").rglob("*.png"))) == 3 * len(LETTERS)
    assert digest(tmp_path / "a") == digest(tmp_path / "b") != digest(tmp_path / "c")
    assert "3 images of each of 10 letters" in capsys.readouterr().out


def test_ten_real_images_per_class_are_far_from_enough_for_the_pipelines_cnn(tmp_path: Path) -> None:
    main([str(tmp_path / "hard"), "--hard", "--per-class", "40"])
    params = parse_params({"dataset": {"source": "image_folder", "path": str(tmp_path / "hard"), "train_per_class": None}, "trainer": {"progress_bar": False}})
    preprocess(params, tmp_path / "splits")
    pool, test = read_imageset(tmp_path / "splits" / "pool.parquet"), read_imageset(tmp_path / "splits" / "test.parquet")
    assert pool.image_shape == (1, 28, 28)
    accuracy = []
    for seed in (0, 1):
        real = pool.subset(per_class_subset(pool.labels, 10, seed, pool.class_names, "size"))
        accuracy.append(score(fit_classifier(TrainingRows.of(real), params.evaluate, params.trainer, seed, kind="cnn"), test)["acc"])
    assert 0.3 < np.mean(accuracy) < 0.85, accuracy  # far above chance (0.1), well below 90%


def test_a_bad_count_is_one_line_and_writes_nothing(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path / "out"), "--per-class", "-1"])
    assert stop.value.code == 2
    assert "--per-class: expected a whole number >= 1, got '-1'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
