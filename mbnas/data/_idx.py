"""Fashion-MNIST from its four IDX files, raw or gzipped.

IDX: two zero bytes, a type byte (0x08 = unsigned byte), the number of dimensions, each
dimension as a big-endian int32, then the data (http://yann.lecun.com/exdb/mnist/).
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from mbnas.data._sets import ImageSet, Source, check_labels
from mbnas.data.registry import dataset_kind
from mbnas.errors import MbnasError

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot")
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
HOW_TO_GET = dataset_kind("fashion-mnist").how_to_get
_UBYTE = 0x08
_GZIP_MAGIC = b"\x1f\x8b"
# Where else the files sit under a data folder: a per-set subfolder, and torchvision's layout.
_SUBFOLDERS = ("fashion-mnist", "FashionMNIST/raw")


def read_fashion_mnist(directory: Path, image_size: int | None = None) -> Source:
    """The official 60k/10k splits, 1 x 28 x 28 uint8 (``image_size`` is not used: the
    images keep their own size)."""
    folder = _locate(directory)
    train, test = (_read_split(folder, *FILES[split]) for split in ("train", "test"))
    return Source(train, test, CLASSES)


def _locate(directory: Path) -> Path:
    """``directory`` itself or the subfolder of it that holds the training images."""
    for folder in (directory, *(directory / sub for sub in _SUBFOLDERS)):
        if _find(folder, FILES["train"][0]) is not None:
            return folder
    stem = FILES["train"][0]
    raise MbnasError(f"fashion-mnist: no {stem}[.gz] in {directory}; {HOW_TO_GET}")


def _find(folder: Path, stem: str) -> Path | None:
    for path in (folder / stem, folder / f"{stem}.gz"):
        if path.is_file():
            return path
    return None


def _read_split(folder: Path, images_stem: str, labels_stem: str) -> ImageSet:
    paths = []
    for stem in (images_stem, labels_stem):
        path = _find(folder, stem)
        if path is None:
            raise MbnasError(f"fashion-mnist: no {stem}[.gz] in {folder}; {HOW_TO_GET}")
        paths.append(path)
    images, labels = read_idx(paths[0], ndim=3), read_idx(paths[1], ndim=1)
    if len(images) != len(labels):
        raise MbnasError(f"fashion-mnist: {paths[0]} holds {len(images)} images but {paths[1]} "
                         f"holds {len(labels)} labels; {HOW_TO_GET}")
    labels = torch.from_numpy(labels.astype(np.int64))
    check_labels(labels, len(CLASSES), str(paths[1]), HOW_TO_GET)
    return ImageSet(torch.from_numpy(images).unsqueeze(1), labels)


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """The uint8 array of ``ndim`` dimensions in an IDX file, raw or gzipped."""
    data = _read_bytes(path)
    if len(data) < 4 or data[:3] != bytes((0, 0, _UBYTE)) or data[3] != ndim:
        raise MbnasError(f"{path}: bad magic number 0x{bytes(data[:4]).hex()}, expected "
                         f"0x000008{ndim:02x} (IDX, {ndim}-d unsigned bytes); "
                         f"the file is corrupt or not a Fashion-MNIST file; {HOW_TO_GET}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise MbnasError(f"{path}: truncated inside its header ({len(data)} bytes); {HOW_TO_GET}")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + math.prod(dims)
    if len(data) != expected:
        shape = " x ".join(map(str, dims))
        raise MbnasError(f"{path}: {len(data)} bytes, expected {expected} for {shape}; "
                         f"the file is truncated or corrupt; {HOW_TO_GET}")
    # bytearray keeps the array writable, so torch.from_numpy can share it without a copy.
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _read_bytes(path: Path) -> bytearray:
    """The file's bytes, gunzipped when they start with gzip's magic (whatever the name says)."""
    try:
        data = path.read_bytes()
        if data[:2] == _GZIP_MAGIC:
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as err:
        raise MbnasError(f"{path}: cannot read it ({err}); {HOW_TO_GET}") from err
    return bytearray(data)
