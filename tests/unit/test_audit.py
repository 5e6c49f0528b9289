"""The label audit: the bound's math, the folds, the calibrated rules, the audit file, the one-line
errors, and detection of injected faults by out-of-fold VAEs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import torch.nn.functional as F

from pipeline.audit.detection import detection, precision_at_k, recall_at_k
from pipeline.audit.faults import FOREIGN_KINDS, glyph, inject
from pipeline.audit.crossfit import assign_folds, fold_vae, out_of_fold_bounds
from pipeline.audit.ranking import assess, clean_flag_threshold, fit_temperature, interleave, log_posterior, log_prior, robust_z
from pipeline.audit.scores import _bound, label_bounds
from pipeline.audit.table import AUDIT_FIELDS, QUEUES, read_suspects
from pipeline.config import Params
from pipeline.data.imageset import ImageSet
from pipeline.data.parquet import read_imageset, write_imageset
from pipeline.errors import PipelineError
from pipeline.models.vae import build_module, fit_cvae, save_model
from pipeline.reporting.audit_section import audit_section, outlier_title, tile_title
from pipeline.stages import audit as stage


@pytest.fixture(scope="module")
def digits(digits_dir: Path) -> ImageSet:
    return read_imageset(digits_dir / "train.parquet")


@pytest.fixture(scope="module")
def untrained(tmp_path_factory: pytest.TempPathFactory, digits: ImageSet, tiny_params: Params) -> Path:
    """An untrained CVAE saved as the train_vae stage saves one: the audit's math needs no training."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "cvae.ckpt"
    save_model(build_module(digits, tiny_params.vae), path)
    return path


def run_stage(params: Params, digits_dir: Path, out: Path, **paths: Path) -> dict:
    splits = {name: paths.get(name, digits_dir / f"{name}.parquet") for name in stage.SPLITS}
    return stage.run(params, splits, out / "audit.parquet", out / "audit.json")


@pytest.fixture(scope="module")
def quick(tiny_params: Params) -> Params:
    """Two folds of a few steps: the stage's contract, not the audit's quality."""
    return tiny_params.model_copy(update={"audit": tiny_params.audit.model_copy(update={"folds": 2, "steps": 2, "samples": 2})})


def test_margins_outlier_scores_flags_and_ranks_on_known_bounds() -> None:
    # six images, two classes; image 4 is explained far better by the other label, image 5 by none
    bounds = np.array([[-10, -20], [-11, -21], [-20, -10], [-21, -11], [-30, -12], [-90, -91]], float)
    labels = np.array([0, 0, 1, 1, 0, 1])
    audit = assess(bounds, labels, log_prior(labels, 2), false_flag_share=0.2)  # of six images: 1% would be no flag at all
    assert audit.suspect_label.tolist() == [1, 1, 0, 0, 1, 0]
    assert (audit.margin[:4] < 0).all() and (audit.margin[4:] > 0).all()
    assert audit.label_flag.tolist() == [False] * 4 + [True, False]  # image 5's labels differ by a nat: no label is wrong there
    assert audit.outlier_flag.tolist() == [False] * 5 + [True]
    for rank in (audit.rank, audit.label_rank, audit.outlier_rank):
        assert sorted(rank.tolist()) == [1, 2, 3, 4, 5, 6]
    assert audit.rank[4] == 1 and audit.rank[5] == 2  # the two faults head the queue, the label error first
    assert audit.label_rank[4] == 1 and audit.outlier_rank[5] == 1
    assert audit.outlier_bound < -12  # the flag line lies far below the typical image's best bound
    np.testing.assert_allclose(np.exp(log_posterior(bounds, log_prior(labels, 2), audit.temperature))[np.arange(6), labels], audit.label_prob)


def test_the_temperature_recovers_how_overconfident_the_bounds_are() -> None:
    """Labels drawn from softmax(logits); bounds = 20 x logits: the fit finds T near 20."""
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (4000, 5))
    prob = np.exp(logits - logits.max(1, keepdims=True))
    labels = np.array([rng.choice(5, p=row / row.sum()) for row in prob])
    assert fit_temperature(20 * logits, labels, np.zeros(5)) == pytest.approx(20, rel=0.05)
    assert fit_temperature(np.zeros((3, 1)), np.zeros(3, np.int64), np.zeros(1)) == 1.0  # one class: nothing to fit


def test_the_label_threshold_flags_the_chosen_share_of_clean_labels() -> None:
    """Labels drawn from the posterior itself (clean labels, a calibrated model): the rule flags
    about `false_flag_share` of them, and its expected share says so."""
    prob = np.array([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.4, 0.6]])
    # flagged shares at each candidate t: 0.1/4, (0.1+0.2)/4, (0.1+0.2+0.3)/4, ...
    assert clean_flag_threshold(prob, 0.08) == pytest.approx((0.2, 0.075))
    assert clean_flag_threshold(prob, 0.01) == (-np.inf, 0.0)  # even the least likely label would flag too many
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (20000, 5))
    labels = np.array([rng.choice(5, p=row) for row in np.exp(log_posterior(logits, np.zeros(5), 1.0))])
    for share in (0.01, 0.05):
        audit = assess(logits, labels, np.zeros(5), false_flag_share=share)
        assert audit.temperature == pytest.approx(1, rel=0.05)
        assert audit.label_flag.mean() == pytest.approx(share, abs=0.004) and audit.expected_clean_flag_rate <= share


def odd_set(n_odd: int, n_errors: int = 1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Bounds (N, 2) and labels: 60 typical images, `n_odd` genuine but odd ones (explained badly by
    every label, yet best by their own), `n_errors` wrong labels (rows 60+n_odd...), one foreign image (last)."""
    rng = np.random.default_rng(seed)
    own = np.concatenate([rng.normal(-10, 1, 60), rng.normal(-30, 2, n_odd), rng.normal(-10, 1, n_errors), [-90.0]])
    other = own - rng.uniform(8, 12, len(own))  # the other label explains every image worse...
    other[60 + n_odd : 60 + n_odd + n_errors] = own[60 + n_odd : 60 + n_odd + n_errors] + 15  # ...except the wrong labels'
    labels = np.arange(len(own)) % 2
    bounds = np.where(labels[:, None] == np.arange(2), own[:, None], other[:, None])
    return bounds, labels


def test_odd_genuine_images_do_not_bury_a_wrong_label_in_the_review_queue() -> None:
    bounds, labels = odd_set(n_odd=12)
    audit = assess(bounds, labels, log_prior(labels, 2))
    error, foreign = 72, 73
    assert audit.outlier_flag[60:72].all() and audit.label_flag.sum() == 1  # a dozen genuine images flagged as outliers
    assert audit.label_rank[error] == 1 and audit.outlier_rank[foreign] == 1
    assert audit.rank[error] == 1 and audit.rank[foreign] == 2
    assert sorted(audit.rank.tolist()) == list(range(1, len(labels) + 1))
    flagged = audit.label_flag | audit.outlier_flag
    assert audit.rank[flagged].max() < audit.rank[~flagged].min()  # the flags head the queue


def test_the_flagged_queues_alternate_so_neither_kind_crowds_out_the_other() -> None:
    bounds, labels = odd_set(n_odd=10, n_errors=3)
    audit = assess(bounds, labels, log_prior(labels, 2))
    errors = np.arange(70, 73)
    assert sorted(audit.rank[errors].tolist()) == [1, 3, 5]  # every other place, while both queues have flags left
    assert audit.rank[-1] == 2 and audit.outlier_rank[-1] == 1  # the foreign image (last row) leads the outlier queue
    assert interleave(np.array([4, 1, 2]), np.array([1, 3])).tolist() == [4, 1, 3, 2]  # a row taken once


def test_robust_z_uses_median_and_mad_of_the_reference() -> None:
    reference = np.array([1.0, 2.0, 3.0, 4.0, 100.0])  # one wild value moves neither
    np.testing.assert_allclose(robust_z(np.array([3.0, 3.0 + 1.4826]), reference), [0.0, 1.0])
    assert np.isfinite(robust_z(np.array([5.0]), np.ones(4))).all()  # zero MAD counts as one


def test_the_stage_writes_the_contract_plus_audit_columns_ranked(quick: Params, digits_dir: Path, tmp_path: Path) -> None:
    metrics = run_stage(quick, digits_dir, tmp_path)
    path = tmp_path / "audit.parquet"
    schema = pq.read_schema(path)
    assert str(schema.field("image").type) == "struct<bytes: binary, path: string>"
    assert {"label", "label_name", "source"} | {f.name for f in AUDIT_FIELDS} <= set(schema.names)
    hf = json.loads(schema.metadata[b"huggingface"])["info"]["features"]
    assert hf["suspect_label"]["_type"] == "ClassLabel"
    for queue in QUEUES:
        assert hf[queue] == {"dtype": "int64", "_type": "Value"} and schema.field(queue).type == "int64"
    table = pq.read_table(path).drop(["image"]).to_pydict()
    sizes = {name: len(read_imageset(digits_dir / f"{name}.parquet")) for name in stage.SPLITS}
    total = sum(sizes.values())
    for queue in QUEUES:
        assert sorted(table[queue]) == list(range(1, total + 1))
    margin_order = sorted(range(total), key=lambda i: table["label_rank"][i])
    assert [table["margin"][i] for i in margin_order] == sorted(table["margin"], reverse=True)
    outlier_order = sorted(range(total), key=lambda i: table["outlier_rank"][i])
    assert [table["outlier_score"][i] for i in outlier_order] == sorted(table["outlier_score"], reverse=True)
    assert table["split"] == [name for name in stage.SPLITS for _ in range(sizes[name])]  # every labeled split but test
    assert sorted(set(table["fold"])) == [0, 1] and all(0 <= p <= 1 for p in table["label_prob"])
    assert all(s != g for s, g in zip(table["suspect_label"], table["label"]))
    assert read_imageset(path).labels.tolist() == table["label"]  # still a contract file
    assert metrics["images"] == {**sizes, "all": total}
    assert metrics["flagged_label"]["val"] == sum(f for f, s in zip(table["label_flag"], table["split"]) if s == "val")
    either = [a or b for a, b in zip(table["label_flag"], table["outlier_flag"])]
    assert metrics["queue_head"]["pool"] == sum(f for f, s in zip(either, table["split"]) if s == "pool")
    written = json.loads((tmp_path / "audit.json").read_text())
    assert written["thresholds"]["outlier_z"] == 3.5 and written["folds"] == 2
    assert 0 <= written["expected_clean_flag_share"] <= quick.audit.false_flag_share and "label_prob" in written["thresholds"]
    first = path.read_bytes(), (tmp_path / "audit.json").read_bytes()
    run_stage(quick, digits_dir, tmp_path)
    assert (path.read_bytes(), (tmp_path / "audit.json").read_bytes()) == first  # byte-identical rerun


def test_the_report_section_draws_the_top_of_each_queue(quick: Params, digits_dir: Path, tmp_path: Path) -> None:
    metrics = run_stage(quick, digits_dir, tmp_path)
    suspects = read_suspects(tmp_path / "audit.parquet", 5)
    assert len(suspects.images) == 5 and suspects.images.dtype == np.uint8
    table = pq.read_table(tmp_path / "audit.parquet").drop(["image"]).to_pydict()
    for queue in ("label_rank", "outlier_rank"):
        top = read_suspects(tmp_path / "audit.parquet", 3, by=queue)
        first = [i for i in sorted(range(len(table[queue])), key=lambda i: table[queue][i])][:3]
        assert top.label_names == [table["label_name"][i] for i in first]
        assert top.outlier_flag.tolist() == [table["outlier_flag"][i] for i in first]
    with pytest.raises(ValueError, match="no review queue"):
        read_suspects(tmp_path / "audit.parquet", 3, by="margin")
    context = audit_section(tmp_path / "audit.parquet", metrics, 5, tmp_path / "fig.png")
    assert context["shown"] == 5 and (tmp_path / "fig.png").stat().st_size > 0
    assert context["flagged_label_pct"] == f"{100 * metrics['flagged_label']['all'] / metrics['images']['all']:.1f}"
    assert tile_title("3", "8", True, False) == "3 -> 8"
    assert tile_title("3", "8", False, True) == "3: outlier"
    assert outlier_title("3", True) == "3: outlier" and outlier_title("3", False) == "3: outlier?"


def expect_one_line(capsys: pytest.CaptureFixture, argv: list[str], fragment: str) -> None:
    with pytest.raises(SystemExit) as stop:
        stage.main(argv)
    assert stop.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], lines


def stage_argv(tmp_path: Path, train: Path, val: Path, pool: Path) -> list[str]:
    (tmp_path / "none.yaml").write_text("trainer: {progress_bar: false}\n")
    return ["--train", str(train), "--val", str(val), "--pool", str(pool),
            "--out", str(tmp_path / "a.parquet"), "--metrics", str(tmp_path / "a.json"), "--params", str(tmp_path / "none.yaml")]


def test_one_image_of_a_class_stops_with_one_line(digits_dir: Path, digits: ImageSet, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    first = np.array([np.flatnonzero(digits.labels == k)[0] for k in range(digits.num_classes)])
    write_imageset(tmp_path / "one.parquet", digits.subset(first))
    val = read_imageset(digits_dir / "val.parquet")
    write_imageset(tmp_path / "val.parquet", val.subset(np.flatnonzero(val.labels != 0)))  # class '0': the one train image only
    argv = stage_argv(tmp_path, tmp_path / "one.parquet", tmp_path / "val.parquet", tmp_path / "no-pool.parquet")
    expect_one_line(capsys, argv, "one.parquet: class '0' has 1 image(s) among the audited ones; the audit needs at least 2 per class")
    assert not (tmp_path / "a.parquet").exists()


def test_splits_of_other_classes_stop_with_one_line(digits_dir: Path, digits: ImageSet, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    renamed = ImageSet(digits.images, digits.labels, tuple(f"digit {name}" for name in digits.class_names))
    write_imageset(tmp_path / "renamed.parquet", renamed)
    argv = stage_argv(tmp_path, digits_dir / "train.parquet", tmp_path / "renamed.parquet", digits_dir / "pool.parquet")
    expect_one_line(capsys, argv, "renamed.parquet: classes ['digit 0', 'digit 1'")
    assert not (tmp_path / "a.parquet").exists()


def test_folds_are_stratified_seeded_and_every_class_trains_in_every_fold() -> None:
    labels = np.repeat(np.arange(4), [2, 7, 10, 23])
    fold = assign_folds(labels, 5, seed=3)
    assert (fold == assign_folds(labels, 5, seed=3)).all() and not (fold == assign_folds(labels, 5, seed=4)).all()
    assert np.bincount(fold, minlength=5).max() - np.bincount(fold, minlength=5).min() <= 1  # folds of equal size
    for k in range(5):
        assert set(labels[fold != k]) == {0, 1, 2, 3}  # two images suffice for a class to train everywhere
    cfg = fold_vae(Params().vae, steps=600, train_images=1107)
    assert (cfg.epochs, cfg.kl_warmup_epochs, cfg.consistency, cfg.sample_every_n_epochs) == (34, 5, 0.0, 0)
    assert fold_vae(Params().vae, steps=600, train_images=36).epochs == Params().vae.epochs  # small data: the vae schedule as it is


def test_no_image_is_scored_by_a_model_that_trained_on_it(digits_dir: Path, quick: Params) -> None:
    """Every image carries its row number in its pixels; a spy on the fold fits records what each
    model trained and chose its epoch on, and the scores of its fold must be of other images."""
    pool = read_imageset(digits_dir / "pool.parquet")
    marked = pool.images.copy()
    marked[:, 0, 0, 0], marked[:, 0, 1, 0] = np.arange(len(pool)) % 256, np.arange(len(pool)) // 256
    data = ImageSet(marked, pool.labels, pool.class_names)
    seen: list[set[int]] = []

    def spy(train: ImageSet, val: ImageSet, vae, params: Params, seed: int):
        seen.append({int(a) + 256 * int(b) for a, b in np.concatenate([train.images, val.images])[:, 0, :2, 0]})
        return build_module(train, vae).model

    folds = out_of_fold_bounds(data, quick.model_copy(update={"audit": quick.audit.model_copy(update={"folds": 3})}), 0, fit=spy)
    assert len(seen) == 3
    for k, trained in enumerate(seen):
        scored = set(np.flatnonzero(folds.fold == k).tolist())
        assert scored and not scored & trained and scored | trained == set(range(len(data)))
    assert np.isfinite(folds.bounds).all() and (folds.bounds < 0).all()  # every row scored


def test_faults_flip_the_share_and_append_foreign_images(digits: ImageSet) -> None:
    faulty = inject(digits, flip_share=0.1, outlier_share=0.06, seed=0)
    n = len(digits)
    assert faulty.flipped.sum() == round(0.1 * n) and not faulty.flipped[n:].any()
    changed = faulty.data.labels[:n] != digits.labels
    assert (changed == faulty.flipped[:n]).all()  # a flip always moves to another class
    assert faulty.outlier.sum() == round(0.06 * n) and faulty.outlier[n:].all()
    assert set(faulty.kind[n:]) == set(FOREIGN_KINDS)
    np.testing.assert_array_equal(faulty.data.images[:n], digits.images)
    assert inject(digits, 0.1, 0.06, seed=0).data.labels.tolist() == faulty.data.labels.tolist()
    assert glyph("A", 8, 8).max() > 100  # a letter was drawn


def test_detection_figures_on_known_answers() -> None:
    truth = np.array([True, True, False, False, False])
    assert detection(np.array([5.0, 4, 3, 2, 1]), truth) == {"k": 2, "precision_at_k": 1.0, "recall_at_k": 1.0, "auroc": 1.0}
    scores = np.array([5.0, 1, 4, 2, 3])  # one fault first, the other last
    assert precision_at_k(scores, truth, 2) == 0.5 and recall_at_k(scores, truth, 3) == 0.5
    assert detection(scores, truth)["auroc"] == pytest.approx(0.5)
    assert math.isnan(detection(scores, np.zeros(5, bool))["auroc"])


@pytest.fixture(scope="module")
def clean_and_flipped(digits_dir: Path, one_thread) -> dict:
    """Out-of-fold audits (the default vae and audit params, 8 importance samples) of 400 clean
    digits and of the same with 5% labels flipped and 2% foreign images: about 80 s in all. Fewer
    steps would not do: at 300 the undertrained VAEs flag 3% of the clean labels."""
    pool = read_imageset(digits_dir / "pool.parquet")
    pool = pool.subset(np.sort(np.random.default_rng(0).permutation(len(pool))[:400]))
    params = Params.model_validate({"trainer": {"progress_bar": False, "num_threads": 1}, "audit": {"samples": 8}})
    audits = {}
    for name, faulty in (("clean", inject(pool, 0.0, 0.0, seed=0)), ("faulty", inject(pool, 0.05, 0.02, seed=0))):
        data = faulty.data
        audits[name] = (faulty, assess(out_of_fold_bounds(data, params, 0).bounds, data.labels, log_prior(data.labels, 10)))
    return audits


@pytest.mark.slow
def test_on_clean_labels_few_images_are_flagged(clean_and_flipped: dict) -> None:
    _, audit = clean_and_flipped["clean"]
    assert audit.label_flag.mean() <= 0.02 and audit.outlier_flag.mean() <= 0.01, (audit.label_flag.mean(), audit.outlier_flag.mean())
    assert audit.expected_clean_flag_rate <= 0.03


@pytest.mark.slow
def test_out_of_fold_vaes_find_injected_flips_and_foreign_images(clean_and_flipped: dict) -> None:
    faulty, audit = clean_and_flipped["faulty"]
    original = ~faulty.outlier
    flips = detection(audit.margin[original], faulty.flipped[original])
    outliers = detection(audit.outlier_score, faulty.outlier)
    assert flips["auroc"] > 0.95 and flips["precision_at_k"] >= 0.7, flips
    assert outliers["auroc"] > 0.9, outliers
    assert faulty.flipped[audit.label_flag].mean() >= 0.5  # most flags are real flips
