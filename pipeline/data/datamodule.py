"""Image data for Lightning: decoded once into arrays, batched without per-item Python work.

`ArrayDataset` implements `__getitems__`, so a DataLoader fetches a whole batch with one
fancy-index instead of `batch_size` calls; with augmentation it runs albumentations per image on
the uint8 arrays (never on PNG bytes). Unlabeled images join the training rows with label -1.
"""

from __future__ import annotations

import functools
import os
import random
from pathlib import Path

import albumentations as A
import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from pipeline import lifecycle
from pipeline.data.augment import augment_batch, classic_transform
from pipeline.data.imageset import ImageSet
from pipeline.data.parquet import read_imageset

UNLABELED = -1  # the label of an unlabeled training row (the semi-supervised VAE sums it out)


class ArrayDataset(Dataset):
    def __init__(
        self,
        data: ImageSet,
        weights: np.ndarray | None = None,
        transform: A.Compose | None = None,
        unlabeled: np.ndarray | None = None,
    ) -> None:
        self.images = data.images  # (N, H, W, C) uint8, kept for augmentation
        self.tensor = torch.from_numpy(data.as_float())  # (N, C, H, W) in [0, 1]
        self.labels = torch.from_numpy(data.labels)
        if unlabeled is not None and len(unlabeled):  # (U, H, W, C) uint8 rows after the labeled ones
            self.images = np.concatenate([self.images, unlabeled])
            as_float = np.ascontiguousarray(unlabeled.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0
            self.tensor = torch.cat([self.tensor, torch.from_numpy(as_float)])
            self.labels = torch.cat([self.labels, torch.full((len(unlabeled),), UNLABELED, dtype=torch.int64)])
        self.weights = torch.ones(len(self.labels))
        if weights is not None:
            self.weights[: len(data)] = torch.as_tensor(weights, dtype=torch.float32)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.__getitems__([i])

    def __getitems__(self, index: list[int]):
        index = torch.as_tensor(index)
        if self.transform is None:
            x = self.tensor[index]
        else:
            augmented = augment_batch(self.transform, self.images[index.numpy()])
            x = torch.from_numpy(augmented.transpose(0, 3, 1, 2).astype(np.float32) / 255.0)
        return x, self.labels[index], self.weights[index]


def keep_batch(batch):
    """`__getitems__` already returns a batch; the default collate would re-stack it."""
    return batch


def seed_worker(worker_id: int) -> None:
    """albumentations 2.0 repeats one sequence in every worker unless each is reseeded."""
    info = torch.utils.data.get_worker_info()
    if info is not None and getattr(info.dataset, "transform", None) is not None:
        info.dataset.transform.set_random_seed(torch.initial_seed() % 2**32)


def init_worker(parent: int, worker_id: int) -> None:
    """A DataLoader worker ends with the process that loads from it, even one SIGKILLed, at once
    (torch's own look at its parent comes every 5 s, between batches); and reseeds its augmentation."""
    lifecycle.die_with_parent(parent)
    seed_worker(worker_id)


def make_loader(
    dataset: ArrayDataset, batch_size: int, shuffle: bool, num_workers: int, seed: int
) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        collate_fn=keep_batch,
        worker_init_fn=functools.partial(init_worker, os.getpid()),
        generator=generator,
        persistent_workers=num_workers > 0,
    )


class ImageDataModule(pl.LightningDataModule):
    """Train/val loaders over contract Parquet files (or ImageSets already in memory)."""

    def __init__(
        self,
        train: ImageSet | Path | str,
        val: ImageSet | Path | str | None,
        batch_size: int = 64,
        num_workers: int = 0,
        augment: bool = False,
        seed: int = 0,
        train_weights: np.ndarray | None = None,
        unlabeled: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self._train_source, self._val_source = train, val
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.augment, self.train_weights, self.unlabeled = augment, train_weights, unlabeled
        self.train_set: ImageSet | None = None
        self.val_set: ImageSet | None = None
        self._loader_rng: torch.Generator | None = None
        self._transform = None
        self._resumed: dict | None = None  # random streams of a checkpoint, applied to the next loader

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set = _as_imageset(self._train_source)
            self.val_set = None if self._val_source is None else _as_imageset(self._val_source)

    def train_dataloader(self) -> DataLoader:
        self._transform = classic_transform(self.seed) if self.augment else None
        dataset = ArrayDataset(self.train_set, self.train_weights, self._transform, self.unlabeled)
        batch = min(self.batch_size, len(dataset))
        loader = make_loader(dataset, batch, True, self.num_workers, self.seed)
        self._loader_rng = loader.generator
        if self._resumed:
            self._loader_rng.set_state(self._resumed["loader"])
            for (numpy_rng, python_rng), (numpy_state, python_state) in zip(_augment_rngs(self._transform), self._resumed["augment"]):
                numpy_rng.bit_generator.state = numpy_state
                python_rng.setstate(python_state)
        return loader

    def state_dict(self) -> dict:
        """Where the shuffling and augmentation random streams stand, saved in every checkpoint: a
        fit resumed from one draws the batches an uninterrupted fit would, not epoch 0's again."""
        if self._loader_rng is None:
            return {}
        augment = [(numpy_rng.bit_generator.state, python_rng.getstate()) for numpy_rng, python_rng in _augment_rngs(self._transform)]
        return {"loader": self._loader_rng.get_state(), "augment": augment}

    def load_state_dict(self, state: dict) -> None:
        self._resumed = state or None

    def val_dataloader(self) -> DataLoader | list:
        if self.val_set is None:
            return []
        return make_loader(ArrayDataset(self.val_set), 1024, False, 0, self.seed)


def _augment_rngs(transform) -> list[tuple[np.random.Generator, random.Random]]:
    """The random generators of an albumentations pipeline and of each transform in it."""
    if transform is None:
        return []
    found = [(transform.random_generator, transform.py_random)]
    for child in getattr(transform, "transforms", []):
        found += _augment_rngs(child) if hasattr(child, "transforms") else [(child.random_generator, child.py_random)]
    return found


def _as_imageset(source: ImageSet | Path | str) -> ImageSet:
    return source if isinstance(source, ImageSet) else read_imageset(source)
