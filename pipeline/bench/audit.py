"""Does the label audit find known faults, flag little on clean labels, and match cleanlab?

Cases: the digits (8x8) and a 28x28 letters folder (`bench/letters.py`, where genuine images vary
enough to compete with the foreign ones), each at 10 and 50 labeled images per class drawn from
its pool: the sizes of a user's labeled set. Each case is audited twice, as the audit stage
audits: clean, and with 5% of labels flipped plus 2% foreign images appended (noise, inverted
images, letters of no class). Every image is scored out of fold (`audit.folds` VAEs, the
pipeline's own `out_of_fold_bounds` and params), so the faults are looked for with models that
never trained on them. Beside it, cleanlab (a dev extra; skipped with a note when missing):
`find_label_issues` on out-of-fold probabilities of a logistic regression on pixels, cross-fitted
on the *same folds*, and `OutOfDistribution` on pixels (kNN) and on those probabilities. Flips are
measured among the original images (a foreign image's label means nothing); outliers among all.
Scores: higher = more suspect, k = the number of faults. Every ranking of the audit file is
measured: `rank` (the combined review queue), `label_rank`, `margin`, `outlier_rank`.
"""

from __future__ import annotations

import importlib.util
import itertools
import time
from collections.abc import Callable

import numpy as np

from pipeline.audit.crossfit import assign_folds, out_of_fold_bounds
from pipeline.audit.detection import detection
from pipeline.audit.faults import FOREIGN_KINDS, Faulty, inject
from pipeline.audit.ranking import assess, log_prior
from pipeline.config import Params
from pipeline.data.imageset import ImageSet
from pipeline.models.training import quiet_lightning

FAULTS = ((0.0, 0.0), (0.05, 0.02))  # (flipped share, foreign share): clean, then faulty
TARGETS = {  # issue #35
    "clean_label_flag_share_max": 0.02, "clean_outlier_flag_share_max": 0.01,
    "flip_auroc_min": 0.95, "flip_precision_at_k_min": 0.7, "outlier_auroc_min": 0.95,
}


def cleanlab_available() -> bool:
    return importlib.util.find_spec("cleanlab") is not None


def vae_scores(faulty: Faulty, params: Params) -> tuple[dict, dict]:
    """({"label": margin, "outlier": outlier score, flags, "rankings": higher = earlier}, timings) of the audit on the faulty set."""
    start = time.perf_counter()
    data = faulty.data
    bounds = out_of_fold_bounds(data, params, params.seed).bounds
    audit = assess(bounds, data.labels, log_prior(data.labels, data.num_classes), params.audit.outlier_z, params.audit.false_flag_share)
    timings = {"audit_s": time.perf_counter() - start}
    rankings = {"rank": -audit.rank, "label_rank": -audit.label_rank, "margin": audit.margin, "outlier_rank": -audit.outlier_rank}
    scores = {"label": audit.margin, "outlier": audit.outlier_score, "flagged_label": audit.label_flag, "flagged_outlier": audit.outlier_flag,
              "expected_clean_flag_share": audit.expected_clean_flag_rate}
    return {**scores, "rankings": {name: np.asarray(value, np.float64) for name, value in rankings.items()}}, timings


def ranking_figures(faulty: Faulty, rankings: dict) -> dict:
    """{ranking: {"flips": ..., "outliers": ...}}: each ordering of the audit file measured on both kinds."""
    original = ~faulty.outlier
    return {
        name: {"flips": detection(order[original], faulty.flipped[original]), "outliers": detection(order, faulty.outlier)}
        for name, order in rankings.items()
    }


def cleanlab_scores(faulty: Faulty, params: Params) -> dict:
    """cleanlab's label-quality and out-of-distribution scores, negated so higher = more suspect;
    its classifier cross-fitted on the folds the audit uses."""
    from cleanlab.filter import find_label_issues
    from cleanlab.outlier import OutOfDistribution
    from cleanlab.rank import get_label_quality_scores
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    x = faulty.data.images.reshape(len(faulty.data), -1).astype(np.float64) / 255.0
    labels = faulty.data.labels
    fold = assign_folds(labels, params.audit.folds, params.seed)
    folds = [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(params.audit.folds)]
    probs = cross_val_predict(LogisticRegression(max_iter=2000), x, labels, cv=folds, method="predict_proba")
    return {
        "label": -get_label_quality_scores(labels, probs),  # self-confidence, find_label_issues' default ranking
        "flagged_label": find_label_issues(labels, probs, n_jobs=1),
        "outlier_features": -OutOfDistribution().fit_score(features=x, verbose=False),
        "outlier_probs": -OutOfDistribution().fit_score(pred_probs=probs, labels=labels, verbose=False),
        "classifier_accuracy": float((probs.argmax(1) == labels).mean()),
    }


def by_kind(scores: np.ndarray, faulty: Faulty, kind: str) -> float | None:
    """AUROC of one kind of foreign image against the original images (None: no image of that kind)."""
    if not (faulty.kind == kind).any():
        return None
    keep = ~faulty.outlier | (faulty.kind == kind)
    return detection(scores[keep], faulty.outlier[keep])["auroc"]


def compare(faulty: Faulty, scores: dict) -> dict:
    """One method's flagged shares, and on a faulty set its detection figures on both kinds of fault."""
    original = ~faulty.outlier
    flagged = scores["flagged_label"][original]
    flips = {"flagged": int(flagged.sum()), "flagged_share": float(flagged.mean())}
    if faulty.flipped.any():
        flips.update(detection(scores["label"][original], faulty.flipped[original]))
        flips["flagged_precision"] = float(faulty.flipped[original][flagged].mean()) if flagged.any() else 0.0
    out = {"flips": flips}
    for key in ("outlier", "outlier_features", "outlier_probs"):
        if key in scores and faulty.outlier.any():
            found = out[key.replace("outlier", "outliers")] = detection(scores[key], faulty.outlier)
            found["auroc_by_kind"] = {kind: by_kind(scores[key], faulty, kind) for kind in FOREIGN_KINDS}
    if "flagged_outlier" in scores:
        out.setdefault("outliers", {}).update(flagged=int(scores["flagged_outlier"].sum()), flagged_share=float(scores["flagged_outlier"].mean()))
    return out


def bench_audit(
    params: Params, cases: dict[str, ImageSet], steps: int | None = None, faults: tuple[tuple[float, float], ...] = FAULTS,
    say: Callable[[str], None] = print,
) -> dict:
    """For every case {name: labeled images} and fault mix: the audit's rankings and flags and cleanlab's figures, and the targets."""
    quiet_lightning()
    if steps is not None:
        params = params.model_copy(update={"audit": params.audit.model_copy(update={"steps": steps})})
    runs = []
    with_cleanlab = cleanlab_available()
    for (case, data), (flip, foreign) in itertools.product(cases.items(), faults):
        faulty = inject(data, flip, foreign, params.seed)
        say(f"audit, {case}: {flip:.0%} labels flipped, {int(faulty.outlier.sum())} foreign images, {params.audit.folds} folds of {len(faulty.data)} images")
        scores, timings = vae_scores(faulty, params)
        run = {"case": case, "image_shape": list(data.image_shape), "flip_share": flip, "images": len(faulty.data),
               "flipped": int(faulty.flipped.sum()), "outliers": int(faulty.outlier.sum()), "vae": compare(faulty, scores),
               "expected_clean_flag_share": scores["expected_clean_flag_share"],
               **({"rankings": ranking_figures(faulty, scores["rankings"])} if faulty.outlier.any() else {}), **timings}
        if with_cleanlab:
            lab = cleanlab_scores(faulty, params)
            run["cleanlab"] = {**compare(faulty, lab), "classifier_accuracy": lab["classifier_accuracy"]}
        runs.append(run)
    return {
        "runs": runs,
        "samples": params.audit.samples,
        "folds": params.audit.folds,
        "steps": params.audit.steps,
        "cleanlab": "compared" if with_cleanlab else "cleanlab not installed (pip install -e '.[dev]'): its columns are skipped",
        "targets": TARGETS,
    }
