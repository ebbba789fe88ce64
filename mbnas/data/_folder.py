"""An image folder in torchvision's ImageFolder layout, decoded once with Pillow.

``DIR/train/<class>/*.png`` and ``DIR/test/<class>/*.png`` give the two splits; a folder of
class folders alone (``DIR/<class>/*.png``, or only ``DIR/train/``) is one set, from which
a fixed, seeded 20% becomes the test split.  Every image is converted to RGB and resized
to ``image_size`` x ``image_size`` (aspect ratio not kept); without one, to the larger side
of the first training image, so a folder of 64 px images trains at 64 px.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mbnas.data._sets import ImageSet, Source
from mbnas.data.registry import dataset_kind
from mbnas.errors import MbnasError
from mbnas.resources import check_fits, image_bytes

EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".ppm", ".tif", ".tiff", ".webp")
HOW_TO_GET = dataset_kind("folder").how_to_get
TEST_FRACTION = 5  # one image in five
# The carved test split must not move when --split-seed changes: it has its own seed.
_TEST_SEED = 20240601


def read_folder(directory: Path, image_size: int | None = None) -> Source:
    train_dir, test_dir = directory / "train", directory / "test"
    root = train_dir if train_dir.is_dir() else directory
    classes = _classes(root)
    if image_size is None:
        image_size = _own_size(root, classes)
    train = _read_images(root, classes, image_size, every_class=True)
    if root is train_dir and test_dir.is_dir():
        test = _read_images(test_dir, classes, image_size, every_class=False)
    else:
        train, test = _carve_test(train, root)
    return Source(train, test, classes)


def _classes(root: Path) -> tuple[str, ...]:
    classes = tuple(sorted(p.name for p in root.iterdir()
                           if p.is_dir() and not p.name.startswith(".")))
    if not classes:
        raise MbnasError(f"folder: no class folders in {root}; {HOW_TO_GET}")
    if len(classes) < 2:  # one class trains to 100% and says nothing of any architecture
        raise MbnasError(f"folder: {root} has one class folder, {classes[0]!r}; a "
                         f"classifier needs at least 2; {HOW_TO_GET}")
    return classes


def _own_size(root: Path, classes: tuple[str, ...]) -> int:
    """The larger side of the first training image: the size the folder's images have."""
    from PIL import Image

    for name in classes:
        for path in _image_files(root / name) if (root / name).is_dir() else []:
            try:
                with Image.open(path) as image:
                    return max(image.size)
            except (OSError, ValueError) as err:
                raise MbnasError(f"folder: cannot decode {path} ({err}); remove it or "
                                 "replace it with a readable image") from err
    raise MbnasError(f"folder: no images ({', '.join(EXTENSIONS)}) under {root}; {HOW_TO_GET}")


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if p.suffix.lower() in EXTENSIONS and p.is_file() and not p.name.startswith("."))


def _read_images(root: Path, classes: tuple[str, ...], size: int, *,
                 every_class: bool) -> ImageSet:
    """All images under ``root/<class>/``; ``every_class``: each class must have some."""
    unknown = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                     and p.name not in classes)
    if unknown:
        raise MbnasError(f"folder: {root} has class folders {', '.join(unknown)} that the "
                         f"training folder lacks; {HOW_TO_GET}")
    files: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        found = _image_files(root / name) if (root / name).is_dir() else []
        if every_class and not found:
            raise MbnasError(f"folder: no images ({', '.join(EXTENSIONS)}) in {root / name}; "
                             f"{HOW_TO_GET}")
        files += found
        labels += [label] * len(found)
    if not files:
        raise MbnasError(f"folder: no images ({', '.join(EXTENSIONS)}) under {root}; "
                         f"{HOW_TO_GET}")
    check_fits(image_bytes(len(files), size), f"folder: {len(files):,} images at {size} x "
               f"{size} px", "use a smaller --proxy-resolution")
    images = np.empty((len(files), 3, size, size), dtype=np.uint8)
    for i, path in enumerate(files):
        images[i] = _decode(path, size)
    return ImageSet(torch.from_numpy(images), torch.tensor(labels, dtype=torch.int64))


def _decode(path: Path, size: int) -> np.ndarray:
    """One image as uint8 3 x size x size."""
    try:
        from PIL import Image
    except ImportError as err:
        raise MbnasError("folder: reading images needs Pillow; pip install pillow") from err
    try:
        with Image.open(path) as image:
            image.draft("RGB", (size, size))  # JPEG: decode at a reduced scale, much faster
            rgb = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise MbnasError(f"folder: cannot decode {path} ({err}); remove it or replace it "
                         "with a readable image") from err
    return np.asarray(rgb).transpose(2, 0, 1)


def _carve_test(whole: ImageSet, root: Path) -> tuple[ImageSet, ImageSet]:
    """A fixed, seeded fifth of ``whole`` as the test split; the rest for training."""
    n = len(whole)
    if n < 3:
        raise MbnasError(f"folder: {root} holds {n} image(s); carving a test split and a "
                         f"validation split needs at least 3; {HOW_TO_GET}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(_TEST_SEED))
    n_test = max(1, n // TEST_FRACTION)
    test, train = order[:n_test].sort().values, order[n_test:].sort().values
    return whole.take(train), whole.take(test)
