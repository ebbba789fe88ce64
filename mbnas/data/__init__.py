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

import importlib

from mbnas.data.registry import DataSetKind, dataset_kind, dataset_names, register, unregister

# The loaders import torch; the registry does not (the command line lists the names before
# anything heavy is imported): they are imported when first used.
_LAZY = {"Batches": "mbnas.data._batches", "Dataset": "mbnas.data._sets",
         "ImageSet": "mbnas.data._sets", "Source": "mbnas.data._sets",
         "load_dataset": "mbnas.data._load", "default_dirs": "mbnas.data._load"}

__all__ = ["DATASETS", "DEFAULT_DIRS", "Batches", "DataSetKind", "Dataset", "ImageSet",
           "Source", "dataset_kind", "dataset_names", "default_dirs", "load_dataset",
           "register", "unregister"]


def __getattr__(name: str):
    if name == "DATASETS":  # the registered names, now
        return dataset_names()
    if name == "DEFAULT_DIRS":
        return importlib.import_module("mbnas.data._load").default_dirs()
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mbnas.data' has no attribute {name!r}")
