"""``load_dataset``: read a data set once into memory and carve the validation split."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from mbnas.data._cifar import how_to_get as cifar_how_to_get
from mbnas.data._cifar import read_cifar
from mbnas.data._folder import HOW_TO_GET as FOLDER_HOW_TO_GET
from mbnas.data._folder import read_folder
from mbnas.data._idx import HOW_TO_GET as IDX_HOW_TO_GET
from mbnas.data._idx import read_fashion_mnist
from mbnas.data._sets import Dataset, Source, channel_stats, check_count
from mbnas.data._synthetic import make_synthetic
from mbnas.errors import MbnasError
from mbnas.training.protocol import DATA_ENV, DATASETS, DEFAULT_VAL_SIZE

DEFAULT_DIRS = {"fashion-mnist": "/usr/share/datasets/fashion-mnist"}
ENV_DIR = DATA_ENV  # overrides DEFAULT_DIRS; --data-dir overrides both
MAX_VAL_FRACTION = 5  # validation takes at most one training image in five
# Horizontal mirrors keep labels, except for the synthetic set's oriented gratings.
FLIPS = {"fashion-mnist": True, "cifar10": True, "cifar100": True, "folder": True,
         "synthetic": False}
HOW_TO_GET = {"fashion-mnist": IDX_HOW_TO_GET, "cifar10": cifar_how_to_get("cifar10"),
              "cifar100": cifar_how_to_get("cifar100"), "folder": FOLDER_HOW_TO_GET}


def load_dataset(name: str = "fashion-mnist", data_dir: str | os.PathLike | None = None, *,
                 val_size: int = DEFAULT_VAL_SIZE, subset: int | None = None, split_seed: int = 0,
                 image_size: int | None = None) -> Dataset:
    """Load ``name`` into memory as uint8 tensors, with a seeded validation split.

    ``val_size`` training images (at most a fifth, at least one) become ``val``; with
    ``subset``, only that many of the rest stay in ``train``.  Both come from one permutation
    seeded by ``split_seed``, so the same arguments give identical tensors.  ``image_size``
    is the side that ``folder`` images are resized to (None: the size they have); other sets
    keep their own.
    """
    if name not in DATASETS:
        raise MbnasError(f"dataset: {name!r} is not allowed; choose one of {', '.join(DATASETS)}")
    check_count("val_size", val_size, 1)
    if subset is not None:
        check_count("subset", subset, 1)
    check_count("split_seed", split_seed, 0)
    if image_size is not None:
        check_count("image_size", image_size, 1)
    source = _read(name, data_dir, image_size)
    if len(source.train) < 2:
        raise MbnasError(f"{name}: {len(source.train)} training image(s); holding one out for "
                         "validation needs at least 2")
    train_index, val_index = split_indices(len(source.train), val_size, subset, split_seed)
    train = source.train.take(train_index)
    mean, std = channel_stats(train.images)
    return Dataset(name=name, train=train, val=source.train.take(val_index), test=source.test,
                   classes=source.classes, mean=mean, std=std, flip=FLIPS[name])


def split_indices(n: int, val_size: int, subset: int | None,
                  seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Training and validation indices into ``n`` images: one seeded permutation, val first.

    Both come back sorted, so the kept images stay in file order.
    """
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = max(1, min(val_size, n // MAX_VAL_FRACTION))
    val, train = order[:n_val], order[n_val:]
    if subset is not None:
        train = train[:subset]  # more than there are keeps them all
    return train.sort().values, val.sort().values


def _read(name: str, data_dir: str | os.PathLike | None, image_size: int | None) -> Source:
    if name == "synthetic":
        return make_synthetic()
    directory = data_folder(name, data_dir)
    if name == "fashion-mnist":
        return read_fashion_mnist(directory)
    if name == "folder":
        return read_folder(directory, image_size)
    return read_cifar(name, directory)


def data_folder(name: str, data_dir: str | os.PathLike | None) -> Path:
    """``data_dir``, else ``$MBNAS_DATA``, else the default folder of ``name``; it must exist."""
    if data_dir:
        chosen, origin = data_dir, "--data-dir"
    elif os.environ.get(ENV_DIR):
        chosen, origin = os.environ[ENV_DIR], f"${ENV_DIR}"
    elif name in DEFAULT_DIRS:
        chosen, origin = DEFAULT_DIRS[name], "the default folder"
    else:
        raise MbnasError(f"{name}: no data folder given; {HOW_TO_GET[name]}")
    folder = Path(chosen).expanduser()
    if not folder.is_dir():
        raise MbnasError(f"{name}: {folder} ({origin}) is not a folder; {HOW_TO_GET[name]}")
    return folder
