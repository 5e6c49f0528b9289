"""From out-of-fold bounds to what a person reviews: a suggested label, two scores, flags, a rank.

Every bound comes from a VAE that never trained on the image (`crossfit.py`), so every rule
below reads out-of-sample scores only.

* posterior: the VAE as a Bayes classifier, p(y | x) ∝ p(y) p(x | y)^(1/T). Bounds of log p(x | y)
  differ by tens of nats, far sharper than the model is right; the temperature T is fitted by
  log-likelihood of the given labels (a deterministic 1-d search), on the images the rule does not
  flag at T = 1 (wrong labels would otherwise flatten it).
* label_flag: confident learning (Northcutt et al., 2021). Class j's threshold t_j is the mean
  posterior of j over the images labelled j; an image is counted confidently in the class of
  highest posterior among those reaching their threshold, and flagged when that class is not its
  label. The thresholds adapt to how sure the model is of each class, so flags stay rare on clean
  labels without a margin to tune. `expected_clean_flag_rate` is the share the rule would flag
  if every label were drawn from the calibrated posterior: what to expect of clean data.
* margin = log p(suspect | x) - log p(given | x) under that posterior, suspect = the likeliest
  other label: the label queue's order (`label_rank`).
* outlier_score = how badly even the best label explains the image: -max_y log p(x | y), as a
  robust z-score (median and 1.4826 MAD) against the audited images' own out-of-fold bounds,
  which the few faults among them cannot drag. Flagged above `audit.outlier_z` (3.5: Iglewicz and
  Hoaglin's cut-off for the modified z-score). The best label rather than the mixture log p(x): a
  foreign shape explained half-well by several classes is no more typical for it.
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
    thresholds: np.ndarray  # (K,) confident learning's per-class thresholds t_j
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


@dataclass(frozen=True)
class ConfidentLearning:
    thresholds: np.ndarray  # (K,)
    confident: np.ndarray  # (N,) bool: some class reaches its threshold
    confident_class: np.ndarray  # (N,) int64: the likeliest such class (undefined where not confident)

    def flags(self, labels: np.ndarray) -> np.ndarray:
        return self.confident & (self.confident_class != labels)


def confident_learning(prob: np.ndarray, labels: np.ndarray) -> ConfidentLearning:
    """Per-class thresholds (a class no image is labelled with has none) and where each image is confidently."""
    num_classes = prob.shape[1]
    thresholds = np.array([prob[labels == j, j].mean() if (labels == j).any() else np.inf for j in range(num_classes)])
    above = prob >= thresholds
    return ConfidentLearning(thresholds, above.any(1), np.where(above, prob, -1.0).argmax(1))


def assess(bounds: np.ndarray, labels: np.ndarray, log_prior: np.ndarray, outlier_z: float = 3.5) -> Audit:
    """bounds (N, K) out-of-fold, from `crossfit.out_of_fold_bounds` (module docstring for the rules)."""
    rows = np.arange(len(labels))
    first = confident_learning(np.exp(log_posterior(bounds, log_prior, 1.0)), labels).flags(labels)
    temperature = fit_temperature(bounds[~first], labels[~first], log_prior)
    posterior = log_posterior(bounds, log_prior, temperature)
    prob = np.exp(posterior)
    cl = confident_learning(prob, labels)
    others = posterior.copy()
    others[rows, labels] = -np.inf
    suspect = others.argmax(1) if bounds.shape[1] > 1 else labels.copy()
    margin = posterior[rows, suspect] - posterior[rows, labels]
    best = bounds.max(1)
    outlier = robust_z(-best, -best)
    label_flag, outlier_flag = cl.flags(labels), outlier > outlier_z
    larger_z = np.maximum(robust_z(margin, margin), outlier)
    median, scale = center_scale(-best)
    return Audit(
        bound=bounds[rows, labels], suspect_label=suspect.astype(np.int64), suspect_bound=bounds[rows, suspect],
        label_prob=prob[rows, labels], margin=margin, outlier_score=outlier, label_rank=queue_rank(margin), outlier_rank=queue_rank(outlier),
        rank=combined_rank(margin, outlier, label_flag, outlier_flag, larger_z),
        label_flag=label_flag, outlier_flag=outlier_flag, outlier_bound=-(median + outlier_z * scale),
        temperature=temperature, thresholds=cl.thresholds,
        expected_clean_flag_rate=float(np.where(cl.confident, 1 - prob[rows, cl.confident_class], 0.0).mean()) if len(labels) else 0.0,
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
