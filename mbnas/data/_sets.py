"""Images and labels held in memory as uint8 tensors, and what a loader returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from mbnas.errors import MbnasError


@dataclass(frozen=True, eq=False)  # eq=False: tensors have no truth value to compare by
class ImageSet:
    """Images and their labels: ``images`` uint8 N x C x H x W (C is 1 or 3), ``labels`` int64 N."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        images, labels = self.images, self.labels
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in (1, 3):
            raise MbnasError(f"images: expected uint8 N x C x H x W with C 1 or 3, "
                             f"got {images.dtype} {tuple(images.shape)}")
        if labels.dtype != torch.int64 or labels.shape != images.shape[:1]:
            raise MbnasError(f"labels: expected int64 of length {images.shape[0]}, "
                             f"got {labels.dtype} {tuple(labels.shape)}")
        object.__setattr__(self, "images", images.contiguous())

    def __len__(self) -> int:
        return self.labels.shape[0]

    def __repr__(self) -> str:
        return f"ImageSet({len(self)} x {'x'.join(map(str, self.images.shape[1:]))} uint8)"

    def take(self, index: torch.Tensor) -> ImageSet:
        """The images at ``index``, in that order (a copy)."""
        return ImageSet(self.images[index], self.labels[index])


@dataclass(frozen=True, eq=False)
class Dataset:
    """The three splits of one data set, with what a training loop needs to know about them.

    ``val`` is carved from the official training images by a seeded permutation and drives
    every search decision; ``test`` is the official test set, kept for final reports.
    ``mean`` and ``std`` are per channel on the [0, 1] scale, computed on ``train``.
    """

    name: str
    train: ImageSet
    val: ImageSet
    test: ImageSet
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    flip: bool

    @property
    def channels(self) -> int:
        return self.train.images.shape[1]

    @property
    def size(self) -> int:
        return self.train.images.shape[-1]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}: {len(self.train)} train, {len(self.val)} val, "
                f"{len(self.test)} test, {self.channels}x{self.size}x{self.size}, "
                f"{self.num_classes} classes)")


class Source(NamedTuple):
    """What a reader returns: the official splits, before validation is carved out."""

    train: ImageSet
    test: ImageSet
    classes: tuple[str, ...]


def check_labels(labels: torch.Tensor, num_classes: int, where: str, how_to_get: str) -> None:
    """Every label names one of the classes."""
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)][0]
        raise MbnasError(f"{where}: label {int(bad)} is out of range for {num_classes} classes; "
                         f"the file is corrupt or belongs to another data set; {how_to_get}")


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation on the [0, 1] scale.

    Exact, from a histogram of the 256 byte values: no float copy of the whole set
    (CIFAR-10's training images would need 550 MB as float32).
    """
    values = torch.arange(256, dtype=torch.float64) / 255
    means, stds = [], []
    for channel in range(images.shape[1]):
        counts = torch.bincount(images[:, channel].reshape(-1), minlength=256).double()
        total = counts.sum()
        mean = (counts * values).sum() / total
        var = (counts * values.square()).sum() / total - mean.square()
        means.append(float(mean))
        # A constant channel would divide by zero when normalising; one grey level is the floor.
        stds.append(max(float(var.clamp_min(0).sqrt()), 1 / 255))
    return tuple(means), tuple(stds)


def check_count(where: str, value: int, minimum: int) -> None:
    """``value`` is an integer (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise MbnasError(f"{where}: {value!r} is not allowed; it must be an integer of at "
                         f"least {minimum}")
