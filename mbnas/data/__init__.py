"""The in-memory image data layer: data sets as uint8 tensors, and batches built in torch.

:func:`load_dataset` reads a whole data set once (Fashion-MNIST, CIFAR-10/100, an image
folder, or a generated set for tests) and carves a fixed, seeded validation split from the
training images; every search decision uses ``val``, and ``test`` is kept for final
reports.  :class:`Batches` turns an :class:`ImageSet` into normalised float batches, with
seeded random crops and flips for training, without per-image Python work.

    data = load_dataset("fashion-mnist", val_size=5000)
    for x, y in Batches(data.train, 256, mean=data.mean, std=data.std, train=True,
                        flip=data.flip):
        ...
"""

from __future__ import annotations

from mbnas.data._batches import Batches
from mbnas.data._load import DATASETS, DEFAULT_DIRS, load_dataset
from mbnas.data._sets import Dataset, ImageSet

__all__ = ["DATASETS", "DEFAULT_DIRS", "Batches", "Dataset", "ImageSet", "load_dataset"]
