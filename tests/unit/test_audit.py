"""The label audit: the bound's math, the ranking rules, the audit file, the one-line errors, and
detection of injected faults."""

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
from pipeline.audit.ranking import assess, interleave, log_prior, robust_z
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


def run_stage(params: Params, model: Path, digits_dir: Path, out: Path, train: Path | None = None) -> dict:
    return stage.run(params, model, train or digits_dir / "train.parquet", digits_dir / "val.parquet", out / "audit.parquet", out / "audit.json")


def test_one_sample_with_zero_noise_is_the_elbo_at_the_posterior_mean(digits: ImageSet, tiny_params: Params) -> None:
    torch.manual_seed(0)
    model = build_module(digits, tiny_params.vae).model.eval()
    x, y = torch.from_numpy(digits.as_float()[:6]), torch.full((6,), 2, dtype=torch.long)
    with torch.no_grad():
        got = _bound(model, x, 2, torch.zeros(1, 6, model.latent_dim))
        mu, logvar = model.encoder(x, y)
        log_px = -F.binary_cross_entropy_with_logits(model.decoder(mu, y), x, reduction="none").flatten(1).sum(1)
    # log p(x|mu) + log N(mu; 0, I) - log N(mu; mu, sigma): the 2 pi terms cancel
    expected = log_px - 0.5 * mu.pow(2).sum(1) + 0.5 * logvar.sum(1)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-4)


def test_bounds_are_seeded_independent_of_batching_and_tighten_with_samples(untrained: Path, digits: ImageSet) -> None:
    from pipeline.models.vae import load_cvae

    model = load_cvae(untrained).model
    a = label_bounds(model, digits, samples=4, seed=0, batch_size=8)
    assert a.shape == (len(digits), digits.num_classes) and np.isfinite(a).all()
    # The noise is drawn per image, so the batch size cannot change it; the last float bits may
    # still differ (a kernel's blocking depends on the matrix size, on some CPUs), so not exactly.
    np.testing.assert_allclose(a, label_bounds(model, digits, samples=4, seed=0, batch_size=1024), rtol=1e-5, atol=1e-4)
    assert not np.array_equal(a, label_bounds(model, digits, samples=4, seed=1))
    # importance weighting tightens the bound (Burda et al.): more samples, higher on average
    assert label_bounds(model, digits, 64, seed=0).mean() > label_bounds(model, digits, 1, seed=0).mean()


def test_margins_outlier_scores_flags_and_ranks_on_known_bounds() -> None:
    # six images, two classes; image 4 is explained far better by the other label, image 5 by none
    bounds = np.array([[-10, -20], [-11, -21], [-20, -10], [-21, -11], [-30, -12], [-90, -91]], float)
    labels = np.array([0, 0, 1, 1, 0, 1])
    audit = assess(bounds, labels, log_prior(np.array([0, 0, 1, 1]), 2), np.ones(6, bool))
    np.testing.assert_allclose(audit.margin, [-10, -10, -10, -10, 18, 1])
    assert audit.suspect_label.tolist() == [1, 1, 0, 0, 1, 0]
    assert audit.label_flag.tolist() == [False, False, False, False, True, True]
    assert audit.outlier_flag.tolist() == [False] * 5 + [True]
    for rank in (audit.rank, audit.label_rank, audit.outlier_rank):
        assert sorted(rank.tolist()) == [1, 2, 3, 4, 5, 6]
    assert audit.rank[4] == 1 and audit.rank[5] == 2  # the two faults head the queue, the label error first
    assert audit.label_rank[4] == 1 and audit.outlier_rank[5] == 1
    assert audit.outlier_bound < -12  # the flag line lies far below the typical image's best bound


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
    audit = assess(bounds, labels, log_prior(labels, 2), np.ones(len(labels), bool))
    error, foreign = 72, 73
    assert audit.outlier_flag[60:72].all() and audit.label_flag.sum() == 1  # a dozen genuine images flagged as outliers
    assert audit.label_rank[error] == 1 and audit.outlier_rank[foreign] == 1
    assert audit.rank[error] == 1 and audit.rank[foreign] == 2
    assert sorted(audit.rank.tolist()) == list(range(1, len(labels) + 1))
    flagged = audit.label_flag | audit.outlier_flag
    assert audit.rank[flagged].max() < audit.rank[~flagged].min()  # the flags head the queue


def test_the_flagged_queues_alternate_so_neither_kind_crowds_out_the_other() -> None:
    bounds, labels = odd_set(n_odd=10, n_errors=3)
    audit = assess(bounds, labels, log_prior(labels, 2), np.ones(len(labels), bool))
    errors = np.arange(70, 73)
    assert sorted(audit.rank[errors].tolist()) == [1, 3, 5]  # every other place, while both queues have flags left
    assert audit.rank[-1] == 2 and audit.outlier_rank[-1] == 1  # the foreign image (last row) leads the outlier queue
    assert interleave(np.array([4, 1, 2]), np.array([1, 3])).tolist() == [4, 1, 3, 2]  # a row taken once


def test_robust_z_uses_median_and_mad_of_the_reference() -> None:
    reference = np.array([1.0, 2.0, 3.0, 4.0, 100.0])  # one wild value moves neither
    np.testing.assert_allclose(robust_z(np.array([3.0, 3.0 + 1.4826]), reference), [0.0, 1.0])
    assert np.isfinite(robust_z(np.array([5.0]), np.ones(4))).all()  # zero MAD counts as one


def test_the_stage_writes_the_contract_plus_audit_columns_ranked(untrained: Path, digits_dir: Path, tiny_params: Params, tmp_path: Path) -> None:
    metrics = run_stage(tiny_params, untrained, digits_dir, tmp_path)
    path = tmp_path / "audit.parquet"
    schema = pq.read_schema(path)
    assert str(schema.field("image").type) == "struct<bytes: binary, path: string>"
    assert {"label", "label_name", "source"} | {f.name for f in AUDIT_FIELDS} <= set(schema.names)
    hf = json.loads(schema.metadata[b"huggingface"])["info"]["features"]
    assert hf["suspect_label"]["_type"] == "ClassLabel"
    for queue in QUEUES:
        assert hf[queue] == {"dtype": "int64", "_type": "Value"} and schema.field(queue).type == "int64"
    table = pq.read_table(path).drop(["image"]).to_pydict()
    n_train, n_val = (len(read_imageset(digits_dir / f"{s}.parquet")) for s in ("train", "val"))
    for queue in QUEUES:
        assert sorted(table[queue]) == list(range(1, n_train + n_val + 1))
    margin_order = sorted(range(len(table["margin"])), key=lambda i: table["label_rank"][i])
    assert [table["margin"][i] for i in margin_order] == sorted(table["margin"], reverse=True)
    outlier_order = sorted(range(len(table["margin"])), key=lambda i: table["outlier_rank"][i])
    assert [table["outlier_score"][i] for i in outlier_order] == sorted(table["outlier_score"], reverse=True)
    assert table["split"] == ["train"] * n_train + ["val"] * n_val
    assert all(s != g for s, g in zip(table["suspect_label"], table["label"]))
    assert read_imageset(path).labels.tolist() == table["label"]  # still a contract file
    assert metrics["images"] == {"train": n_train, "val": n_val}
    assert metrics["flagged_label"]["val"] == sum(f for f, s in zip(table["label_flag"], table["split"]) if s == "val")
    either = [a or b for a, b in zip(table["label_flag"], table["outlier_flag"])]
    assert metrics["queue_head"]["train"] == sum(f for f, s in zip(either, table["split"]) if s == "train")
    assert json.loads((tmp_path / "audit.json").read_text())["thresholds"]["outlier_z"] == 3.5
    first = path.read_bytes(), (tmp_path / "audit.json").read_bytes()
    run_stage(tiny_params, untrained, digits_dir, tmp_path)
    assert (path.read_bytes(), (tmp_path / "audit.json").read_bytes()) == first  # byte-identical rerun


def test_the_report_section_draws_the_top_of_each_queue(untrained: Path, digits_dir: Path, tiny_params: Params, tmp_path: Path) -> None:
    metrics = run_stage(tiny_params, untrained, digits_dir, tmp_path)
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
    assert tile_title("3", "8", True, False) == "3 -> 8"
    assert tile_title("3", "8", False, True) == "3: outlier"
    assert outlier_title("3", True) == "3: outlier" and outlier_title("3", False) == "3: outlier?"


def expect_one_line(capsys: pytest.CaptureFixture, argv: list[str], fragment: str) -> None:
    with pytest.raises(SystemExit) as stop:
        stage.main(argv)
    assert stop.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], lines


def test_one_image_per_class_stops_with_one_line(untrained: Path, digits_dir: Path, digits: ImageSet, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    first = np.array([np.flatnonzero(digits.labels == k)[0] for k in range(digits.num_classes)])
    write_imageset(tmp_path / "one.parquet", digits.subset(first))
    argv = ["--model", str(untrained), "--train", str(tmp_path / "one.parquet"), "--val", str(digits_dir / "val.parquet"),
            "--out", str(tmp_path / "a.parquet"), "--metrics", str(tmp_path / "a.json"), "--params", str(tmp_path / "none.yaml")]
    (tmp_path / "none.yaml").write_text("trainer: {progress_bar: false}\n")
    expect_one_line(capsys, argv, "one.parquet: class '0' has 1 image(s); the audit needs at least 2 per class")
    assert not (tmp_path / "a.parquet").exists()


def test_a_model_trained_on_other_class_names_stops_with_one_line(untrained: Path, digits_dir: Path, digits: ImageSet, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    renamed = ImageSet(digits.images, digits.labels, tuple(f"digit {name}" for name in digits.class_names))
    write_imageset(tmp_path / "renamed.parquet", renamed)
    argv = ["--model", str(untrained), "--train", str(tmp_path / "renamed.parquet"), "--val", str(digits_dir / "val.parquet"),
            "--out", str(tmp_path / "a.parquet"), "--metrics", str(tmp_path / "a.json"), "--params", str(tmp_path / "none.yaml")]
    (tmp_path / "none.yaml").write_text("{}\n")
    expect_one_line(capsys, argv, "cvae.ckpt: trained on classes ['0', '1'")
    with pytest.raises(PipelineError, match="rerun train_vae"):
        stage.run(Params(), untrained, tmp_path / "renamed.parquet", digits_dir / "val.parquet", tmp_path / "b.parquet", None)


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


def test_a_briefly_trained_vae_finds_injected_flips_and_foreign_images(digits_dir: Path, tiny_params: Params) -> None:
    """Small data: 300 digits, 10% of labels flipped, 2% foreign images, a VAE of 30 epochs (about 3 s)."""
    pool = read_imageset(digits_dir / "pool.parquet")
    pool = pool.subset(np.sort(np.random.default_rng(0).permutation(len(pool))[:300]))
    faulty = inject(pool, 0.10, 0.02, seed=0)
    vae = tiny_params.vae.model_copy(update={"epochs": 30, "hidden_channels": 16, "latent_dim": 8, "sample_every_n_epochs": 0})
    module, _ = fit_cvae(faulty.data, read_imageset(digits_dir / "val.parquet"), vae, tiny_params.trainer, seed=0)
    data = faulty.data
    audit = assess(label_bounds(module.model, data, 8, seed=0), data.labels, log_prior(data.labels, 10), np.ones(len(data), bool))
    original = ~faulty.outlier
    flips = detection(audit.margin[original], faulty.flipped[original])
    outliers = detection(audit.outlier_score, faulty.outlier)
    assert flips["auroc"] > 0.85, flips
    assert outliers["auroc"] > 0.8, outliers
