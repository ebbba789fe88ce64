"""CIFAR-10 and CIFAR-100 from the python-pickle archives.

The official format (https://www.cs.toronto.edu/~kriz/cifar.html) is pickle, which can run
code: load only archives you trust.  Each batch holds ``data`` (N x 3072 uint8, RGB planes
of 32 x 32) and the labels; CIFAR-100 is read with its 100 fine labels.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from mbnas.data._sets import ImageSet, Source, check_labels
from mbnas.data.registry import dataset_kind
from mbnas.errors import MbnasError

_SIDE = 32
_PIXELS = 3 * _SIDE * _SIDE


class Layout(NamedTuple):
    folder: str  # the folder the archive unpacks to
    train: tuple[str, ...]
    test: str
    meta: str
    label_key: str
    names_key: str


LAYOUTS = {
    "cifar10": Layout("cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)),
                      "test_batch", "batches.meta", "labels", "label_names"),
    "cifar100": Layout("cifar-100-python", ("train",), "test", "meta", "fine_labels",
                       "fine_label_names"),
}


def how_to_get(name: str) -> str:
    return dataset_kind(name).how_to_get


def read_cifar10(directory: Path, image_size: int | None = None) -> Source:
    """CIFAR-10 (``image_size`` is not used: the images keep their 32 x 32)."""
    return read_cifar("cifar10", directory)


def read_cifar100(directory: Path, image_size: int | None = None) -> Source:
    """CIFAR-100 with its fine labels (``image_size`` is not used)."""
    return read_cifar("cifar100", directory)


def read_cifar(name: str, directory: Path) -> Source:
    """The official 50k/10k splits of ``cifar10`` or ``cifar100``, 3 x 32 x 32 uint8."""
    layout = LAYOUTS[name]
    folder = _locate(name, directory)
    meta = _unpickle(name, folder / layout.meta, layout.names_key)
    names = meta[layout.names_key]
    if not isinstance(names, (list, tuple)) or not names:
        raise MbnasError(f"{name}: {folder / layout.meta} holds no list of class names; "
                         f"{how_to_get(name)}")
    classes = tuple(_text(n) for n in names)
    batches = [_read_batch(name, folder / file, layout.label_key, len(classes))
               for file in layout.train]
    train = ImageSet(torch.cat([b.images for b in batches]), torch.cat([b.labels for b in batches]))
    test = _read_batch(name, folder / layout.test, layout.label_key, len(classes))
    return Source(train, test, classes)


def _locate(name: str, directory: Path) -> Path:
    """``directory`` when it is the unpacked folder, else that folder inside it."""
    layout = LAYOUTS[name]
    for folder in (directory, directory / layout.folder):
        if (folder / layout.test).is_file():
            return folder
    raise MbnasError(f"{name}: no {layout.folder} folder (with {layout.test}) in {directory}; "
                     f"{how_to_get(name)}")


def _read_batch(name: str, path: Path, label_key: str, num_classes: int) -> ImageSet:
    batch = _unpickle(name, path, "data", label_key)
    data, labels = batch["data"], np.asarray(batch[label_key])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != _PIXELS:
        shape = getattr(data, "shape", type(data).__name__)
        raise MbnasError(f"{name}: {path} holds data of shape {shape}, expected N x {_PIXELS} "
                         f"uint8; {how_to_get(name)}")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise MbnasError(f"{name}: {path} holds labels that are not a list of integers; "
                         f"{how_to_get(name)}")
    if len(labels) != len(data):
        raise MbnasError(f"{name}: {path} holds {len(data)} images but {len(labels)} labels; "
                         f"{how_to_get(name)}")
    images = torch.from_numpy(np.ascontiguousarray(data).reshape(-1, 3, _SIDE, _SIDE))
    label_tensor = torch.from_numpy(labels.astype(np.int64))
    check_labels(label_tensor, num_classes, str(path), how_to_get(name))
    return ImageSet(images, label_tensor)


def _unpickle(name: str, path: Path, *keys: str) -> dict[str, Any]:
    """A CIFAR pickle as a dict with str keys, holding at least ``keys``."""
    if not path.is_file():
        raise MbnasError(f"{name}: no {path.name} in {path.parent}; {how_to_get(name)}")
    try:
        with path.open("rb") as file:
            # The archives were pickled by Python 2: byte-string keys, read as bytes.
            loaded = pickle.load(file, encoding="bytes")
    except Exception as err:  # whatever unpickling raises, the file is not a CIFAR pickle
        raise MbnasError(f"{name}: cannot read {path} ({type(err).__name__}: {err}); "
                         f"the file is truncated or corrupt; {how_to_get(name)}") from err
    if not isinstance(loaded, dict):
        raise MbnasError(f"{name}: {path} holds a {type(loaded).__name__}, not a CIFAR batch; "
                         f"{how_to_get(name)}")
    batch = {_text(k): v for k, v in loaded.items()}
    missing = [k for k in keys if k not in batch]
    if missing:
        raise MbnasError(f"{name}: {path} has no {', '.join(missing)} entry; "
                         f"{how_to_get(name)}")
    return batch


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
