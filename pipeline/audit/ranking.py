"""From out-of-fold bounds to what a person reviews: a suggested label, two scores, flags, a rank.

Every bound comes from a VAE that never trained on the image (`crossfit.py`), so every rule
below reads out-of-sample scores only.

* posterior: the VAE as a Bayes classifier, p(y | x) ∝ p(y) p(x | y)^(1/T). Bounds of log p(x | y)
  differ by tens of nats, far sharper than the model is right; the temperature T is fitted by
  log-likelihood of the given labels of every audited image (a deterministic 1-d search). Wrong
  labels among them make T larger, i.e. the posterior less sure: the flags err towards fewer.
* label_flag: calibrated p(given label | x) below a threshold t set so that, were every label
  drawn from the calibrated posterior (clean labels), the expected share of images flagged would
  be at most `audit.false_flag_share` (1%): t is the largest value with
  mean_x sum_y p(y | x) [p(y | x) <= t] <= that share. The false-flag rate is thus chosen, not a
  by-product: confident learning's per-class thresholds (the rule before) flagged 11% of 100
  clean digits and 40% of 100 clean 28x28 letters, where its models were weak.
  `expected_clean_flag_rate` is that expected share at t.
* margin = log p(suspect | x) - log p(given | x) under that posterior, suspect = the likeliest
  other label: the label queue's order (`label_rank`).
* outlier_score = how badly even the best label explains the image: -max_y log p(x | y), as a
  robust z-score against the audited images' own out-of-fold bounds, which the few faults among
  them cannot drag: the median, and 1.4826 times the median distance above it (the upper half of
  a double MAD: genuine images trail a longer tail of poorly explained ones than of well explained
  ones, and the symmetric MAD flagged 4.4% of 500 clean 28x28 letters). Flagged above
  `audit.outlier_z` (3.5: Iglewicz and Hoaglin's cut-off for the modified z-score). The best
  label rather than the mixture log p(x): a foreign shape explained half-well by several classes is no more typical for it.
* label_rank orders images by margin and outlier_rank by outlier score (1 = most suspect, ties in
  file order): each queue answers one question, "which labels are wrong?" and "which images are
  no good under any label?", and neither kind can crowd out the other there.
* rank is the one queue to review: first the flagged images, taking the next label-flagged and the
  next outlier-flagged image in turn (label first), so that after 2k reviews a reviewer has seen
  the top k of each flagged queue whatever the other holds; then every other image by the larger of
  the two robust z-scores (the margin's and the outlier score). Alternating all the way down
  instead costs each kind's AUROC, since a flip deep in the label queue then trails every image
  that high in the outlier queue (`python -m pipeline.bench --only-audit` measures every ranking).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

MAD_TO_SD = 1.4826  # the MAD of a normal distribution times this is its standard deviation
LOG_T_RANGE = (math.log(1e-2), math.log(1e4))  # bounds of the temperature search: 28x28 bounds differ by hundreds of nats


@dataclass(frozen=True)
class Audit:
    bound: np.ndarray  # (N,) bound of log p(x | given label)
    suspect_label: np.ndarray  # (N,) int64, the best other label
    suspect_bound: np.ndarray  # (N,) its bound
    label_prob: np.ndarray  # (N,) calibrated p(given label | x)
    margin: np.ndarray  # (N,) posterior log-odds of suspect over given label (nats)
    outlier_score: np.ndarray  # (N,) robust z of -max_y bound against every audited image's
    label_rank: np.ndarray  # (N,) int64, 1 = largest margin
    outlier_rank: np.ndarray  # (N,) int64, 1 = largest outlier score
    rank: np.ndarray  # (N,) int64, the combined review queue, 1 = first to look at
    label_flag: np.ndarray  # (N,) bool
    outlier_flag: np.ndarray  # (N,) bool
    outlier_bound: float  # best-label bound below which an image is flagged as an outlier (nats)
    temperature: float  # T of the calibrated posterior
    label_threshold: float  # a label is flagged when its calibrated probability is at most this
    expected_clean_flag_rate: float  # share flagged if every label followed the calibrated posterior


def center_scale(reference: np.ndarray) -> tuple[float, float]:
    """Median and 1.4826 MAD of `reference`; a zero MAD (all alike) counts as one."""
    median = float(np.median(reference))
    scale = MAD_TO_SD * float(np.median(np.abs(reference - median)))
    return median, scale if scale > 0 else 1.0


def robust_z(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(values - median) / (1.4826 MAD), both taken on `reference`."""
    median, scale = center_scale(reference)
    return (values - median) / scale


def upper_scale(reference: np.ndarray) -> tuple[float, float]:
    """Median and 1.4826 MAD of the values from it up (the upper half of a "double MAD", Leys et al.
    2013); one where there are none or they are all alike."""
    median = float(np.median(reference))
    above = reference[reference >= median] - median
    scale = MAD_TO_SD * float(np.median(above)) if len(above) else 0.0
    return median, scale if scale > 0 else 1.0


def log_posterior(bounds: np.ndarray, log_prior: np.ndarray, temperature: float) -> np.ndarray:
    """(N, K) normalised log p(y | x) ∝ log p(y) + log p(x | y) / T."""
    return log_softmax(bounds / temperature + log_prior, axis=1)


def fit_temperature(bounds: np.ndarray, labels: np.ndarray, log_prior: np.ndarray) -> float:
    """T minimising the mean negative log posterior of the given labels (1 with fewer than two classes)."""
    if bounds.shape[1] < 2 or not len(labels):
        return 1.0
    rows = np.arange(len(labels))

    def nll(log_t: float) -> float:
        return float(-log_posterior(bounds, log_prior, math.exp(log_t))[rows, labels].mean())

    return math.exp(minimize_scalar(nll, bounds=LOG_T_RANGE, method="bounded", options={"xatol": 1e-6}).x)


def clean_flag_threshold(prob: np.ndarray, share: float) -> tuple[float, float]:
    """(t, expected share): the largest probability t such that flagging every label with
    p(label | x) <= t would flag at most `share` of the images if labels followed `prob` (N, K);
    t = -inf (nothing flagged) when even the least likely label would exceed it."""
    if not prob.size:
        return -math.inf, 0.0
    values, last = np.unique(prob.ravel(), return_counts=True)
    expected = np.cumsum(values * last) / len(prob)  # flagged share at t = values[i]
    ok = np.flatnonzero(expected <= share)
    return (float(values[ok[-1]]), float(expected[ok[-1]])) if len(ok) else (-math.inf, 0.0)


def assess(
    bounds: np.ndarray, labels: np.ndarray, log_prior: np.ndarray, outlier_z: float = 3.5, false_flag_share: float = 0.01,
) -> Audit:
    """bounds (N, K) out-of-fold, from `crossfit.out_of_fold_bounds` (module docstring for the rules)."""
    rows = np.arange(len(labels))
    temperature = fit_temperature(bounds, labels, log_prior)
    posterior = log_posterior(bounds, log_prior, temperature)
    prob = np.exp(posterior)
    threshold, expected = clean_flag_threshold(prob, false_flag_share)
    others = posterior.copy()
    others[rows, labels] = -np.inf
    suspect = others.argmax(1) if bounds.shape[1] > 1 else labels.copy()
    margin = posterior[rows, suspect] - posterior[rows, labels]
    best = bounds.max(1)
    median, scale = upper_scale(-best)
    outlier = (-best - median) / scale
    label_flag, outlier_flag = prob[rows, labels] <= threshold, outlier > outlier_z
    larger_z = np.maximum(robust_z(margin, margin), outlier)
    return Audit(
        bound=bounds[rows, labels], suspect_label=suspect.astype(np.int64), suspect_bound=bounds[rows, suspect],
        label_prob=prob[rows, labels], margin=margin, outlier_score=outlier, label_rank=queue_rank(margin), outlier_rank=queue_rank(outlier),
        rank=combined_rank(margin, outlier, label_flag, outlier_flag, larger_z),
        label_flag=label_flag, outlier_flag=outlier_flag, outlier_bound=-(median + outlier_z * scale),
        temperature=temperature, label_threshold=threshold, expected_clean_flag_rate=expected,
    )


def ranks(order: np.ndarray) -> np.ndarray:
    """Row indices in queue order -> each row's rank (1-based)."""
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(1, len(order) + 1)
    return rank


def descending(score: np.ndarray) -> np.ndarray:
    """Row indices, highest score first; ties keep file order, so reruns rank alike."""
    return np.argsort(-score, kind="stable")


def queue_rank(score: np.ndarray) -> np.ndarray:
    """(N,) int64 rank by `score`, 1 = highest."""
    return ranks(descending(score))


def interleave(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Row indices taken from `first` and `second` in turn, `first` leading; a row already taken is skipped."""
    taken: set[int] = set()
    out = []
    for i in range(max(len(first), len(second))):
        for queue in (first, second):
            if i < len(queue) and int(queue[i]) not in taken:
                taken.add(int(queue[i]))
                out.append(int(queue[i]))
    return np.array(out, np.int64)


def combined_rank(margin: np.ndarray, outlier: np.ndarray, label_flag: np.ndarray, outlier_flag: np.ndarray, larger_z: np.ndarray) -> np.ndarray:
    """The review queue (module docstring): flagged rows alternating between the two queues, then the rest by `larger_z`."""
    by_label, by_outlier = descending(margin), descending(outlier)
    head = interleave(by_label[label_flag[by_label]], by_outlier[outlier_flag[by_outlier]])
    rest = descending(larger_z)
    return ranks(np.concatenate([head, rest[~np.isin(rest, head)]]))


def log_prior(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """log of each class's share of the training labels (add-one smoothed: no class is impossible)."""
    counts = np.bincount(labels, minlength=num_classes) + 1.0
    return np.log(counts / counts.sum())
