"""From per-label bounds to what a person reviews: a suggested label, two scores, flags, a rank.

* margin = how much better the best *other* label explains the image than its given label, in
  nats of posterior log-odds: bound + log prior of that label minus the same for the given one.
  It is log p(other | x) - log p(given | x) under the VAE used as a Bayes classifier, so margin > 0
  means the model would rather believe the other label; that is the flag (`audit.margin_threshold`
  raises the bar).
* outlier_score = how badly even the best label explains the image: -max_y log p(x | y), as a
  robust z-score against the training images (median and MAD, which the few faults among them
  cannot drag). Flagged above `audit.outlier_z` (3.5: Iglewicz and Hoaglin's cut-off for the
  modified z-score). The best label rather than the mixture log p(x) = logsumexp_y [...]: a
  foreign shape explained half-well by several classes is no more typical for it, and on the
  digits benchmark the max scored outliers better at every sample count tried (AUROC +0.01..0.02).
* label_rank orders images by margin and outlier_rank by outlier score (1 = most suspect, ties in
  file order): each queue answers one question, "which labels are wrong?" and "which images are
  no good under any label?", and neither kind can crowd out the other there.
* rank is the one queue to review: first the flagged images, taking the next label-flagged and the
  next outlier-flagged image in turn (label first), so that after 2k reviews a reviewer has seen
  the top k of each flagged queue whatever the other holds; then every other image by the larger of
  the two robust z-scores (the margin's against the training images too). Ranking everything by
  that larger z alone (the rule before issue #26) let genuine-but-odd images outrank wrong labels
  wherever odd images are common; alternating all the way down instead costs each kind's AUROC, since
  a flip deep in the label queue then trails every image that high in the outlier queue (the
  benchmark, `python -m pipeline.bench --only-audit`, measures all four rankings).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAD_TO_SD = 1.4826  # the MAD of a normal distribution times this is its standard deviation


@dataclass(frozen=True)
class Audit:
    bound: np.ndarray  # (N,) bound of log p(x | given label)
    suspect_label: np.ndarray  # (N,) int64, the best other label
    suspect_bound: np.ndarray  # (N,) its bound
    margin: np.ndarray  # (N,) posterior log-odds of suspect over given label (nats)
    outlier_score: np.ndarray  # (N,) robust z of -max_y bound against the reference rows
    label_rank: np.ndarray  # (N,) int64, 1 = largest margin
    outlier_rank: np.ndarray  # (N,) int64, 1 = largest outlier score
    rank: np.ndarray  # (N,) int64, the combined review queue, 1 = first to look at
    label_flag: np.ndarray  # (N,) bool
    outlier_flag: np.ndarray  # (N,) bool
    outlier_bound: float  # best-label bound below which an image is flagged as an outlier (nats)


def center_scale(reference: np.ndarray) -> tuple[float, float]:
    """Median and 1.4826 MAD of `reference`; a zero MAD (all alike) counts as one."""
    median = float(np.median(reference))
    scale = MAD_TO_SD * float(np.median(np.abs(reference - median)))
    return median, scale if scale > 0 else 1.0


def robust_z(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(values - median) / (1.4826 MAD), both taken on `reference`."""
    median, scale = center_scale(reference)
    return (values - median) / scale


def assess(
    bounds: np.ndarray, labels: np.ndarray, log_prior: np.ndarray, reference: np.ndarray,
    margin_threshold: float = 0.0, outlier_z: float = 3.5,
) -> Audit:
    """bounds (N, K) from `scores.label_bounds`; `reference` (N,) bool marks the rows (the training
    images) that the robust z-scores are measured against."""
    rows = np.arange(len(labels))
    posterior = bounds + log_prior  # unnormalised log p(y | x)
    others = posterior.copy()
    others[rows, labels] = -np.inf
    suspect = others.argmax(1) if bounds.shape[1] > 1 else labels.copy()
    margin = posterior[rows, suspect] - posterior[rows, labels]
    best = bounds.max(1)
    outlier = robust_z(-best, -best[reference])
    label_flag, outlier_flag = margin > margin_threshold, outlier > outlier_z
    larger_z = np.maximum(robust_z(margin, margin[reference]), outlier)
    median, scale = center_scale(-best[reference])
    return Audit(
        bound=bounds[rows, labels], suspect_label=suspect.astype(np.int64), suspect_bound=bounds[rows, suspect],
        margin=margin, outlier_score=outlier, label_rank=queue_rank(margin), outlier_rank=queue_rank(outlier),
        rank=combined_rank(margin, outlier, label_flag, outlier_flag, larger_z),
        label_flag=label_flag, outlier_flag=outlier_flag, outlier_bound=-(median + outlier_z * scale),
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
