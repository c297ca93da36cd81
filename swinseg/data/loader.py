"""Iteration-based data loading: an infinite, distributed-aware sampler whose every sample carries
its position in the global stream, so that data order and augmentation depend only on the seed
and the iteration, never on the number of workers or on where a run was resumed."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from .dataset import SegDataset, TrainPipeline
from .transforms import pad_batch

__all__ = ["InfiniteSampler", "TrainSet", "build_train_loader", "shard"]


class InfiniteSampler(Sampler):
    """Endless ``(index, position)`` pairs for one process.

    The global stream is a fresh permutation of the dataset per epoch (seeded by ``seed`` and the
    epoch); process ``rank`` of ``world_size`` takes positions ``rank, rank + world_size, ...``,
    starting at its ``start``-th sample (to resume). One process with batch ``B * world_size``
    therefore sees exactly the samples that ``world_size`` processes with batch ``B`` see together.
    """

    def __init__(self, size: int, seed: int = 0, rank: int = 0, world_size: int = 1, start: int = 0, shuffle: bool = True) -> None:
        if size <= 0:
            raise ValueError("cannot sample from an empty dataset")
        self.size, self.seed, self.rank, self.world_size, self.start, self.shuffle = size, seed, rank, world_size, start, shuffle

    def _order(self, epoch: int) -> Tensor:
        if not self.shuffle:
            return torch.arange(self.size)
        return torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed + epoch))

    def __iter__(self) -> Iterator[tuple[int, int]]:
        j = self.start
        epoch, order = -1, torch.empty(0)
        while True:
            position = j * self.world_size + self.rank
            if position // self.size != epoch:
                epoch = position // self.size
                order = self._order(epoch)
            yield int(order[position % self.size]), position
            j += 1


class TrainSet(Dataset):
    """A dataset through the training pipeline, keyed by ``(index, position)``; the random state of
    each sample is seeded by ``(seed, position)``.

    A sample that cannot be read is an error naming its file, or with ``skip_bad`` replaced by
    the next readable one; each item carries the errors of the samples it skipped.
    """

    def __init__(self, dataset: SegDataset, pipeline: TrainPipeline, seed: int = 0, skip_bad: bool = False) -> None:
        self.dataset, self.pipeline, self.seed, self.skip_bad = dataset, pipeline, seed, skip_bad

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> tuple[Tensor, Tensor, list[str]]:
        index, position = key
        skipped: list[str] = []
        for offset in range(len(self.dataset)):
            try:
                image, label = self.dataset[(index + offset) % len(self.dataset)]
            except (ValueError, OSError) as e:
                if not self.skip_bad:
                    raise
                skipped.append(str(e))
                continue
            return (*self.pipeline(image, label, np.random.default_rng([self.seed, position])), skipped)
        raise ValueError(f"every one of the {len(self.dataset)} training samples is unreadable, e.g. {skipped[0]}")


class _Collate:
    def __init__(self, size: Sequence[int], pad_val: float, seg_pad_val: int) -> None:
        self.size, self.pad_val, self.seg_pad_val = size, pad_val, seg_pad_val

    def __call__(self, batch: list[tuple[Tensor, Tensor, list[str]]]) -> tuple[Tensor, Tensor, list[str]]:
        inputs, labels, skipped = zip(*batch, strict=True)
        return (*pad_batch(inputs, labels, self.size, self.pad_val, self.seg_pad_val), [e for errors in skipped for e in errors])


def _seed_worker(worker_id: int) -> None:
    """Seed Python's and NumPy's global generators per worker (as MMEngine does) for any user
    transform that draws from them; the pipeline itself uses the per-sample generator."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def build_train_loader(
    train_set: TrainSet,
    batch_size: int,
    pad_size: Sequence[int],
    pad_val: float = 0.0,
    seg_pad_val: int = 255,
    num_workers: int | None = 0,
    rank: int = 0,
    world_size: int = 1,
    start: int = 0,
) -> Iterator[tuple[Tensor, Tensor]]:
    """Endless batches of padded ``(inputs (B, 3, H, W), labels (B, H, W), skipped)`` for process ``rank``
    (``skipped``: the errors of unreadable samples replaced in the batch),
    beginning after its first ``start`` samples. Workers get distinct seeds derived from the
    seed and the rank. ``num_workers`` None: :func:`default_workers`."""
    num_workers = default_workers() if num_workers is None else num_workers
    sampler = InfiniteSampler(len(train_set), train_set.seed, rank, world_size, start)
    loader = DataLoader(
        train_set,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=_Collate(pad_size, pad_val, seg_pad_val),
        worker_init_fn=_seed_worker if num_workers else None,
        generator=torch.Generator().manual_seed(train_set.seed + rank * num_workers),
        persistent_workers=num_workers > 0,
        pin_memory=torch.cuda.is_available(),
    )
    return iter(loader)


def default_workers() -> int:
    """The base configs' 4 loading processes per GPU process where the machine has the cores
    for them, else the CPUs this process may use shared among the processes of a torchrun job
    on this machine (never more than DataLoader's advice, which it warns about)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(4, max(cpus // int(os.environ.get("LOCAL_WORLD_SIZE", "1")), 1))


def shard(size: int, rank: int = 0, world_size: int = 1) -> list[int]:
    """The indices process ``rank`` evaluates: every ``world_size``-th, no padding or repeats."""
    return list(range(rank, size, world_size))
