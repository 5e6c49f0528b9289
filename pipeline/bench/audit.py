"""Does the label audit find known faults, and as well as cleanlab does?

Two cases: the digits *pool* (1,077 images, 8x8; the default train set of 10 per class is too
small to flip 5% of it with meaning) and the pool of a 28x28 letters folder (`bench/letters.py`,
where genuine images vary enough to compete with the foreign ones). In each, a share of labels is
flipped (5% and 10%) and 2% foreign images are appended (noise, inverted images, letters of no
class). A VAE is trained on that faulty set with the
pipeline's own `fit_cvae` and params (val for early stopping, as the train_vae stage), the set is
scored by `pipeline.audit`, and the faults are looked for among the very images it trained on, as
the audit stage does. Beside it, cleanlab (a dev extra; skipped with a note when missing):
`find_label_issues` on out-of-sample probabilities of a logistic regression on pixels,
cross-validated (5 folds) on the same images, and `OutOfDistribution` on pixels (kNN) and on those
probabilities. Flips are measured among the original images (a foreign image's label means
nothing); outliers among all. Scores: higher = more suspect, k = the number of faults. Every
ranking of the audit file is measured on both kinds: `rank` (the combined review queue),
`label_rank`, `margin`, `outlier_rank` (the issue #26 target: `rank` within 0.02 AUROC of the margin
on flips and of the outlier score on foreign images).
"""

from __future__ import annotations

import importlib.util
import itertools
import time
from collections.abc import Callable

import numpy as np

from pipeline.audit.detection import detection
from pipeline.audit.faults import FOREIGN_KINDS, Faulty, inject
from pipeline.audit.ranking import assess, log_prior
from pipeline.audit.scores import label_bounds
from pipeline.config import Params
from pipeline.data.imageset import ImageSet
from pipeline.models.training import quiet_lightning
from pipeline.models.vae import fit_cvae

FLIP_SHARES = (0.05, 0.10)
OUTLIER_SHARE = 0.02
TARGETS = {"flip_auroc_at_5pct": 0.95, "outlier_auroc": 0.9, "rank_within": 0.02}  # issue #17 (flips also >= cleanlab's), #26


def cleanlab_available() -> bool:
    return importlib.util.find_spec("cleanlab") is not None


def vae_scores(faulty: Faulty, val: ImageSet, params: Params, epochs: int | None) -> tuple[dict, dict]:
    """({"label": margin, "outlier": outlier score, flags, "rankings": higher = earlier}, timings) of the audit on the faulty set."""
    vae_cfg = params.vae if epochs is None else params.vae.model_copy(update={"epochs": epochs})
    start = time.perf_counter()
    module, _ = fit_cvae(faulty.data, val, vae_cfg, params.trainer.model_copy(update={"progress_bar": False}), params.seed)
    fitted = time.perf_counter()
    data = faulty.data
    bounds = label_bounds(module.model, data, params.audit.samples, params.seed, params.audit.batch_size)
    audit = assess(bounds, data.labels, log_prior(data.labels, data.num_classes), np.ones(len(data), bool))
    timings = {"vae_fit_s": fitted - start, "score_s": time.perf_counter() - fitted}
    rankings = {"rank": -audit.rank, "label_rank": -audit.label_rank, "margin": audit.margin, "outlier_rank": -audit.outlier_rank}
    scores = {"label": audit.margin, "outlier": audit.outlier_score, "flagged_label": audit.label_flag, "flagged_outlier": audit.outlier_flag}
    return {**scores, "rankings": {name: np.asarray(value, np.float64) for name, value in rankings.items()}}, timings


def ranking_figures(faulty: Faulty, rankings: dict) -> dict:
    """{ranking: {"flips": ..., "outliers": ...}}: each ordering of the audit file measured on both kinds."""
    original = ~faulty.outlier
    return {
        name: {"flips": detection(order[original], faulty.flipped[original]), "outliers": detection(order, faulty.outlier)}
        for name, order in rankings.items()
    }


def cleanlab_scores(faulty: Faulty, seed: int) -> dict:
    """cleanlab's label-quality and out-of-distribution scores, negated so higher = more suspect."""
    from cleanlab.filter import find_label_issues
    from cleanlab.outlier import OutOfDistribution
    from cleanlab.rank import get_label_quality_scores
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    x = faulty.data.images.reshape(len(faulty.data), -1).astype(np.float64) / 255.0
    labels = faulty.data.labels
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    probs = cross_val_predict(LogisticRegression(max_iter=2000), x, labels, cv=folds, method="predict_proba")
    return {
        "label": -get_label_quality_scores(labels, probs),  # self-confidence, find_label_issues' default ranking
        "flagged_label": find_label_issues(labels, probs, n_jobs=1),
        "outlier_features": -OutOfDistribution().fit_score(features=x, verbose=False),
        "outlier_probs": -OutOfDistribution().fit_score(pred_probs=probs, labels=labels, verbose=False),
        "classifier_accuracy": float((probs.argmax(1) == labels).mean()),
    }


def by_kind(scores: np.ndarray, faulty: Faulty, kind: str) -> float:
    """AUROC of one kind of foreign image against the original images."""
    keep = ~faulty.outlier | (faulty.kind == kind)
    return detection(scores[keep], faulty.outlier[keep])["auroc"]


def compare(faulty: Faulty, scores: dict) -> dict:
    """Detection figures of one method's scores on both kinds of fault."""
    original = ~faulty.outlier
    out = {"flips": detection(scores["label"][original], faulty.flipped[original])}
    out["flips"]["flagged"] = int(scores["flagged_label"][original].sum())
    out["flips"]["flagged_precision"] = float(faulty.flipped[original][scores["flagged_label"][original]].mean()) if out["flips"]["flagged"] else None
    for key in ("outlier", "outlier_features", "outlier_probs"):
        if key in scores:
            found = out[key.replace("outlier", "outliers")] = detection(scores[key], faulty.outlier)
            found["auroc_by_kind"] = {kind: by_kind(scores[key], faulty, kind) for kind in FOREIGN_KINDS}
    if "flagged_outlier" in scores:
        out["outliers"]["flagged"] = int(scores["flagged_outlier"].sum())
    return out


def bench_audit(
    params: Params, cases: dict[str, tuple[ImageSet, ImageSet]], epochs: int | None = None,
    shares: tuple[float, ...] = FLIP_SHARES, say: Callable[[str], None] = print,
) -> dict:
    """For every case {name: (pool, val)} and flip share: the audit's rankings and cleanlab's figures, and the targets."""
    quiet_lightning()
    runs = []
    with_cleanlab = cleanlab_available()
    for (case, (pool, val)), share in itertools.product(cases.items(), shares):
        faulty = inject(pool, share, OUTLIER_SHARE, params.seed)
        say(f"audit, {case}: {share:.0%} labels flipped, {int(faulty.outlier.sum())} foreign images, VAE on {len(faulty.data)} images")
        scores, timings = vae_scores(faulty, val, params, epochs)
        run = {"case": case, "image_shape": list(pool.image_shape), "flip_share": share, "images": len(faulty.data),
               "flipped": int(faulty.flipped.sum()), "outliers": int(faulty.outlier.sum()), "vae": compare(faulty, scores),
               "rankings": ranking_figures(faulty, scores["rankings"]), **timings}
        if with_cleanlab:
            lab = cleanlab_scores(faulty, params.seed)
            run["cleanlab"] = {**compare(faulty, lab), "classifier_accuracy": lab["classifier_accuracy"]}
        runs.append(run)
    return {
        "runs": runs,
        "samples": params.audit.samples,
        "epochs": params.vae.epochs if epochs is None else epochs,
        "cleanlab": "compared" if with_cleanlab else "cleanlab not installed (pip install -e '.[dev]'): its columns are skipped",
        "targets": TARGETS,
    }
