"""``load_dataset``: read a data set once into memory and carve the validation split."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from mbnas.data._sets import Dataset, Source, channel_stats, check_count
from mbnas.data.registry import DATA_ENV, DEFAULT_VAL_SIZE, dataset_kind, dataset_names
from mbnas.errors import MbnasError

ENV_DIR = DATA_ENV  # overrides a data set's default folder; --data-dir overrides both
MAX_VAL_FRACTION = 5  # validation takes at most one training image in five


def default_dirs() -> dict[str, str]:
    """Where each registered data set lies by default (those that have such a place)."""
    return {n: dataset_kind(n).default_dir for n in dataset_names()
            if dataset_kind(n).default_dir}


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
    kind = dataset_kind(name)
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
                   classes=source.classes, mean=mean, std=std, flip=kind.flips)


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
    kind = dataset_kind(name)
    return kind.read(data_folder(name, data_dir) if kind.needs_folder else None, image_size)


def data_folder(name: str, data_dir: str | os.PathLike | None) -> Path:
    """``data_dir``, else ``$MBNAS_DATA``, else the default folder of ``name``; it must exist."""
    if data_dir:
        chosen, origin = data_dir, "--data-dir"
    elif os.environ.get(ENV_DIR):
        chosen, origin = os.environ[ENV_DIR], f"${ENV_DIR}"
    elif dataset_kind(name).default_dir:
        chosen, origin = dataset_kind(name).default_dir, "the default folder"
    else:
        raise MbnasError(f"{name}: no data folder given; {dataset_kind(name).how_to_get}")
    folder = Path(chosen).expanduser()
    if not folder.is_dir():
        raise MbnasError(f"{name}: {folder} ({origin}) is not a folder; "
                         f"{dataset_kind(name).how_to_get}")
    return folder
