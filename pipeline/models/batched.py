"""Train many small CNN classifiers in one plain torch loop instead of one Trainer each.

The learning curve fits hundreds of tiny `SmallCNN`s. Here K of them train side by side: their
weights are stacked on a leading K axis, the convolutions run as one grouped convolution
(`groups=K`) and the linear layers as batched matmuls, so every layer is one kernel call for all
K models and one AdamW step updates them all (AdamW is elementwise, so this is exactly per-model).

A job's result must not depend on which other jobs share the run, so every random draw comes
from the job's own seed: the initial weights (`torch.manual_seed(seed); SmallCNN(...)`, exactly),
its batch schedule and its dropout masks. Jobs with fewer rows than `batch_size` use all their rows
per step; the run pads their batches with rows of weight 0, which add nothing to loss or gradient.

On CPU the jobs run in groups whose activations fit in cache (~60 models at 8x8, ~20 at 28x28,
in batches of 64): past that, memory traffic costs more than the fewer kernel calls save.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.models.classifier import DROPOUT, SmallCNN, early_pool, input_size, pooled_size, shrink_input
from pipeline.models.conv import conv2d

WEIGHT_DECAY = 1e-4
CACHE_BYTES = 24 * 2**20  # activations per group on CPU, about the L3 cache of the machines measured


@dataclass(frozen=True)
class FitJob:
    """One classifier to fit: its rows, their loss weights, and the seed of all its randomness."""

    images: np.ndarray  # (N, C, H, W) float32 in [0, 1]
    labels: np.ndarray  # (N,) int64
    weights: np.ndarray  # (N,) float32, per-row loss weight
    seed: int
    # (classes,) added to the logits in the training loss only, e.g. tau * log(prior) for logit
    # adjustment (Menon et al. 2021): the model learns to beat the prior; prediction omits it.
    logit_offset: np.ndarray | None = None


def fit_many(
    jobs: list[FitJob],
    num_classes: int,
    steps: int,
    lr: float,
    batch_size: int,
    snapshots: tuple[int, ...] = (),
    device: str = "cpu",
) -> list[dict[int, SmallCNN]]:
    """Fit every job for `steps` AdamW steps; per job, {step count: model} for each snapshot and
    `steps`, so one run yields the models of several training lengths. Models come back on CPU in
    eval mode."""
    if any(not 0 < s <= steps for s in snapshots):
        raise ValueError(f"snapshots must lie in 1..steps ({steps}); got {snapshots}")
    keep_at = sorted({*snapshots, steps})
    run = BatchedRun(jobs, num_classes, steps, lr, batch_size, device)
    saved: dict[int, dict[int, SmallCNN]] = {}
    for n in keep_at:
        saved[n] = run.advance(n)
    return [{n: saved[n][k] for n in keep_at} for k in range(len(jobs))]


class BatchedRun:
    """Jobs training side by side, advanced a number of steps at a time and thinned out between.

    `advance(n)` trains every running job to step n and returns their models; `stop(...)` ends
    some jobs and the rest go on exactly as they would have (each job's batches, dropout and
    initial weights are its own, and AdamW is elementwise), which is what successive halving
    needs. On CPU the jobs are split into cache-sized groups (`_groups`), each its own loop."""

    def __init__(self, jobs: list[FitJob], num_classes: int, steps: int, lr: float, batch_size: int, device: str = "cpu") -> None:
        _check(jobs, num_classes)
        self.steps, self.done = steps, 0
        self.groups: list[_Group] = []
        first = 0
        for members in _groups(jobs, batch_size, device):
            self.groups.append(_Group(members, range(first, first + len(members)), num_classes, steps, lr, batch_size, device))
            first += len(members)

    def running(self) -> list[int]:
        """Indices (into the jobs given) of the jobs still training."""
        return [k for group in self.groups for k in group.ids]

    def advance(self, to_step: int) -> dict[int, SmallCNN]:
        """Train the running jobs to `to_step` (at most the run's `steps`); {job index: model}."""
        if not self.done <= to_step <= self.steps:
            raise ValueError(f"advance: step {to_step} is outside {self.done}..{self.steps}")
        models = {}
        for group in self.groups:
            group.train(self.done, to_step)
            models.update(group.models())
        self.done = to_step
        return models

    def stop(self, ids: set[int]) -> None:
        """End the jobs `ids`; the others continue unchanged."""
        for group in self.groups:
            group.keep([k for k in group.ids if k not in ids])
        self.groups = [group for group in self.groups if group.ids]


class _Group:
    """One loop: stacked weights, their AdamW state and the batch plan of some jobs."""

    def __init__(self, jobs: list[FitJob], ids: range, num_classes: int, steps: int, lr: float, batch_size: int, device: str) -> None:
        self.ids = list(ids)
        self.params, self.templates = _initial_params(jobs, num_classes, device)
        self.lr = lr
        self.optimizer = _adamw(self.params, lr)
        self.plan = _Plan(jobs, batch_size, steps, device, dropout_width=sum(self.params[4].shape[1:]))
        self.offset = _logit_offsets(jobs, num_classes, device)

    def train(self, first: int, stop: int) -> None:
        for step in range(first, stop):
            x, y, w = self.plan.batch(step)
            logits = forward_many(self.params, x, self.plan.dropout_keep())
            if self.offset is not None:
                logits = logits + self.offset
            ce = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view_as(w)
            loss = ((ce * w).sum(1) / w.sum(1).clamp_min(1e-12)).sum()  # models are independent: sum
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()

    def models(self) -> dict[int, SmallCNN]:
        weights = [p.detach().to("cpu", copy=True) for p in self.params]
        return {k: _unstack(weights, i, self.templates[i]) for i, k in enumerate(self.ids)}

    def keep(self, ids: list[int]) -> None:
        """Slice every per-job tensor (weights, AdamW moments, plan, offsets) down to `ids`."""
        if ids == self.ids:
            return
        rows = [self.ids.index(k) for k in ids]
        self.ids, self.templates = ids, [self.templates[i] for i in rows]
        if not ids:
            return
        index = torch.tensor(rows, device=self.params[0].device)
        params = [p.detach()[index].requires_grad_() for p in self.params]
        optimizer = _adamw(params, self.lr)
        for old, new in zip(self.params, params):
            state = self.optimizer.state.get(old)
            if state:
                optimizer.state[new] = {key: value if value.ndim == 0 else value[index] for key, value in state.items()}
        self.params, self.optimizer = params, optimizer
        self.plan.keep(rows)
        if self.offset is not None:
            self.offset = self.offset[index]


def _adamw(params: list[torch.Tensor], lr: float) -> torch.optim.AdamW:
    """One fused kernel for all stacked weights (faster on CPU than the foreach version)."""
    return torch.optim.AdamW(params, lr=lr, weight_decay=WEIGHT_DECAY, fused=True)


def forward_many(params: list[torch.Tensor], x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
    """Logits (K, B, classes) of K stacked SmallCNNs; model k sees channels k*C..(k+1)*C of
    x (B, K*C, H, W). keep (K, B, flat + FEATURE_DIM): the two dropout masks, scaled; None: eval."""
    w1, b1, w2, b2, w3, b3, w4, b4 = params
    k, batch = w1.shape[0], x.shape[0]
    x = shrink_input(x)  # a no-op on the plan's images, which are shrunk once up front
    h = early_pool(conv2d(x, w1.flatten(0, 1), b1.flatten(), padding=1, groups=k)).relu()
    h = conv2d(h, w2.flatten(0, 1), b2.flatten(), padding=1, groups=k)
    h = F.adaptive_max_pool2d(h, 4).relu().reshape(batch, k, -1).transpose(0, 1)  # (K, B, 2w*16)
    flat = h.shape[-1]
    if keep is not None:
        h = h * keep[..., :flat]
    h = torch.baddbmm(b3.unsqueeze(1), h, w3.transpose(1, 2)).relu()  # (K, B, FEATURE_DIM)
    if keep is not None:
        h = h * keep[..., flat:]
    return torch.baddbmm(b4.unsqueeze(1), h, w4.transpose(1, 2))


class _Plan:
    """Each job's batches and dropout masks, drawn from its own generators.

    All jobs' rows sit in one tensor (plus a zero row that pads short batches), and the whole
    schedule is an index (steps, B, K), so a step's inputs for all K models are one gather."""

    def __init__(self, jobs: list[FitJob], batch_size: int, steps: int, device: str, dropout_width: int) -> None:
        self.sizes = [min(batch_size, len(job.labels)) for job in jobs]
        pad_row = sum(len(job.labels) for job in jobs)
        index = np.full((steps, max(self.sizes), len(jobs)), pad_row, dtype=np.int64)
        self.dropout_rngs = []
        start = 0
        for k, (job, size) in enumerate(zip(jobs, self.sizes)):
            order_seq, dropout_seq = np.random.SeedSequence(job.seed).spawn(2)
            index[:, :size, k] = start + _epoch_stream(len(job.labels), size, steps, np.random.default_rng(order_seq))
            self.dropout_rngs.append(np.random.default_rng(dropout_seq))
            start += len(job.labels)
        self.index = torch.from_numpy(index).to(device)
        self.images = shrink_input(_with_zero_row([job.images for job in jobs], np.float32, device))
        self.labels = _with_zero_row([job.labels for job in jobs], np.int64, device)
        self.weights = _with_zero_row([job.weights for job in jobs], np.float32, device)
        self.random_bytes = np.zeros((len(jobs), max(self.sizes), dropout_width), np.uint8)
        self.device = device

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, K*C, H, W) channels-last (the faster layout for these convs on CPU); y, w (K, B)."""
        rows = self.index[step]  # (B, K)
        x = self.images[rows]  # (B, K, C, H, W)
        x = x.flatten(1, 2).contiguous(memory_format=torch.channels_last)
        return x, self.labels[rows].T, self.weights[rows].T

    def keep(self, rows: list[int]) -> None:
        """Only the jobs at positions `rows` go on; their batches and dropout draws are unchanged."""
        self.sizes = [self.sizes[i] for i in rows]
        self.dropout_rngs = [self.dropout_rngs[i] for i in rows]
        self.index = self.index[:, : max(self.sizes), rows]
        self.random_bytes = np.zeros((len(rows), max(self.sizes), self.random_bytes.shape[-1]), np.uint8)

    def dropout_keep(self) -> torch.Tensor:
        """(K, B, features) masks scaled by 1/(1-p), as nn.Dropout does; padded rows are ignored.

        One random byte per unit (drop when below 256p; exact for p = 0.25): numpy's raw bytes cost
        a fraction of `torch.rand` floats, which took ~10% of a step."""
        for k, (size, rng) in enumerate(zip(self.sizes, self.dropout_rngs)):
            drawn = np.frombuffer(rng.bytes(size * self.random_bytes.shape[-1]), np.uint8)
            self.random_bytes[k, :size] = drawn.reshape(size, -1)
        keep = torch.from_numpy(self.random_bytes).to(self.device) >= round(256 * DROPOUT)
        return keep.float().mul_(1 / (1 - DROPOUT))


def _logit_offsets(jobs: list[FitJob], num_classes: int, device: str) -> torch.Tensor | None:
    """(K, 1, classes) training-loss offsets, zero for jobs without one; None when no job has one
    (then the loop is exactly what it was before offsets existed)."""
    if all(job.logit_offset is None for job in jobs):
        return None
    rows = [np.zeros(num_classes, np.float32) if job.logit_offset is None else job.logit_offset for job in jobs]
    return torch.from_numpy(np.stack(rows).astype(np.float32)[:, None, :]).to(device)


def _with_zero_row(arrays: list[np.ndarray], dtype: type, device: str) -> torch.Tensor:
    """All jobs' rows in one tensor, then the zero row that padded batch positions point at."""
    zero = np.zeros((1, *arrays[0].shape[1:]), dtype)
    return torch.from_numpy(np.concatenate([*arrays, zero], dtype=dtype)).to(device)


def _groups(jobs: list[FitJob], batch_size: int, device: str) -> list[list[FitJob]]:
    """Jobs split into even groups of at most CACHE_BYTES of conv activations each (CPU only)."""
    if device != "cpu":
        return [jobs]
    height, width = input_size(*jobs[0].images.shape[2:])
    pooled = int(np.prod(pooled_size(height, width)))
    per_model = 4 * batch_size * (16 * height * width + 32 * pooled)  # conv1 and conv2 outputs, float32
    count = -(-len(jobs) // max(1, CACHE_BYTES // per_model))
    bounds = np.linspace(0, len(jobs), count + 1).round().astype(int)
    return [jobs[start:stop] for start, stop in zip(bounds, bounds[1:])]


def _epoch_stream(rows: int, size: int, steps: int, rng: np.random.Generator) -> np.ndarray:
    """(steps, size) row indices cut from a stream of shuffled epochs: every row is seen equally
    often, no batch is short, and a shorter run's schedule is a prefix of a longer one's."""
    epochs = -(-steps * size // rows)
    stream = np.concatenate([rng.permutation(rows) for _ in range(epochs)])
    return stream[: steps * size].reshape(steps, size)


def _initial_params(jobs: list[FitJob], num_classes: int, device: str) -> tuple[list[torch.Tensor], list[SmallCNN]]:
    """Stacked leaf tensors (K, *shape) in `SmallCNN.parameters()` order, and each job's model,
    built as `torch.manual_seed(seed); SmallCNN(...)` would, without touching the global RNG."""
    models = []
    for job in jobs:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(job.seed)
            models.append(SmallCNN(job.images.shape[1], num_classes))
    stacked = [torch.stack(group).detach().to(device) for group in zip(*(m.parameters() for m in models))]
    return [p.requires_grad_() for p in stacked], models


def _unstack(params: list[torch.Tensor], k: int, template: SmallCNN) -> SmallCNN:
    model = copy.deepcopy(template)
    with torch.no_grad():
        for target, source in zip(model.parameters(), params):
            target.copy_(source[k])
    return model.eval()


def _check(jobs: list[FitJob], num_classes: int) -> None:
    """The errors a caller would otherwise meet as shape mismatches."""
    if not jobs:
        raise ValueError("fit_many needs at least one job")
    shape = jobs[0].images.shape[1:]
    for job in jobs:
        if job.images.shape[1:] != shape or job.images.ndim != 4:
            raise ValueError(f"all jobs need images of one shape (N, C, H, W); got {job.images.shape} and {shape}")
        if not len(job.labels) == len(job.weights) == len(job.images) > 0:
            raise ValueError("each job needs one label and one weight per image, and at least one image")
        if job.labels.min() < 0 or job.labels.max() >= num_classes:
            raise ValueError(f"labels must lie in [0, {num_classes})")
        if job.logit_offset is not None and np.shape(job.logit_offset) != (num_classes,):
            raise ValueError(f"a logit offset needs one value per class ({num_classes}); got shape {np.shape(job.logit_offset)}")


def measure_speedup(k: int = 20, steps: int = 100, batch_size: int = 128, threads: int = 2, seed: int = 0) -> dict:
    """Seconds to fit k digit classifiers (8x8, 100..1100 rows each) in one batched run versus one
    `fit_many` call per job, under `threads` torch threads (the pipeline's `trainer.num_threads` is 1)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images[:, None] / 16.0).astype(np.float32)
    rng = np.random.default_rng(seed)
    jobs = []
    for i, rows in enumerate(np.linspace(100, 1100, k).astype(int)):
        pick = rng.choice(len(images), rows, replace=False)
        jobs.append(FitJob(images[pick], digits.target[pick].astype(np.int64), np.ones(rows, np.float32), seed + i))
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        fit_many(jobs[:2], 10, 2, 5e-3, batch_size)  # warm-up: first-call allocations and kernels
        start = time.perf_counter()
        fit_many(jobs, 10, steps, 5e-3, batch_size)
        batched = time.perf_counter() - start
        start = time.perf_counter()
        for job in jobs:
            fit_many([job], 10, steps, 5e-3, batch_size)
        alone = time.perf_counter() - start
    finally:
        torch.set_num_threads(before)
    return {"batched_s": batched, "one_at_a_time_s": alone, "batched_fit_speedup": alone / batched}
