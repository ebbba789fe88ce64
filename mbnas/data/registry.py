"""The data sets mbnas trains on, each one registration, as block kinds are
(:mod:`mbnas.arch.kinds`): its name, its reader, whether mirrors keep its labels, where it
usually lies and how to get it.  ``--dataset``'s choices, the protocol's check and the
loader all ask this registry.

Torch-free: the command line lists the names before anything heavy is imported.  A
built-in reader is named as ``"module:function"`` and imported when its data set is first
read; a registered one may be any callable.  A reader takes the data folder (None for a set
that needs none) and the side images are to be read at (None: their own; only sets of
mixed sizes, like an image folder, use it) and returns a :class:`mbnas.data.Source`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mbnas.errors import MbnasError

DATA_ENV = "MBNAS_DATA"  # where data sets lie, unless --data-dir says
DEFAULT_DATASET = "fashion-mnist"
DEFAULT_VAL_SIZE = 2_000  # validation images carved from the training split


@dataclass(frozen=True)
class DataSetKind:
    """One data set mbnas can load."""

    name: str
    reader: Callable | str  # (folder, image_size) -> Source, or "module:function"
    flips: bool = True  # whether horizontal mirrors keep its labels (augmentation)
    default_dir: str | None = None  # where it lies when neither --data-dir nor $MBNAS_DATA say
    how_to_get: str = ""  # one sentence for error messages
    needs_folder: bool = True  # False: generated, read from nowhere

    def read(self, folder: Path | None, image_size: int | None):
        reader = self.reader
        if isinstance(reader, str):
            module, _, function = reader.partition(":")
            reader = getattr(importlib.import_module(module), function)
        return reader(folder, image_size)


_REGISTRY: dict[str, DataSetKind] = {}


def register(kind: DataSetKind) -> DataSetKind:
    """Add a data set; its name must be new."""
    if not kind.name or kind.name in _REGISTRY:
        raise MbnasError(f"data set {kind.name!r} is already registered (or has no name)")
    _REGISTRY[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def dataset_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def dataset_kind(name: str) -> DataSetKind:
    if name not in _REGISTRY:
        raise MbnasError(f"--dataset: {name!r} is not allowed; choose one of "
                         f"{', '.join(_REGISTRY)}")
    return _REGISTRY[name]


register(DataSetKind(
    "fashion-mnist", "mbnas.data._idx:read_fashion_mnist",
    default_dir="/usr/share/datasets/fashion-mnist",
    how_to_get=("install it with `apt-get install dataset-fashion-mnist`, or pass --data-dir "
                f"DIR (or set {DATA_ENV}) to a folder holding the four IDX files from "
                "https://github.com/zalandoresearch/fashion-mnist")))
register(DataSetKind(
    "cifar10", "mbnas.data._cifar:read_cifar10",
    how_to_get=("download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz, unpack it "
                f"and pass --data-dir DIR (or set {DATA_ENV}) to the cifar-10-batches-py "
                "folder or the folder holding it")))
register(DataSetKind(
    "cifar100", "mbnas.data._cifar:read_cifar100",
    how_to_get=("download https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz, unpack it "
                f"and pass --data-dir DIR (or set {DATA_ENV}) to the cifar-100-python "
                "folder or the folder holding it")))
register(DataSetKind(
    "folder", "mbnas.data._folder:read_folder",
    how_to_get=(f"pass --data-dir DIR (or set {DATA_ENV}) with images in DIR/train/<class>/ "
                "and DIR/test/<class>/, or in DIR/<class>/ to carve a 20% test split")))
# Oriented gratings: a mirror changes the label.
register(DataSetKind("synthetic", "mbnas.data._synthetic:make_synthetic", flips=False,
                     needs_folder=False))
