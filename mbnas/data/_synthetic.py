"""A small, generated, learnable data set for tests: never a default.

Ten classes of 16 x 16 RGB gratings: five orientations (0, 36, ..., 144 degrees) times two
tints (warm: the grating is strongest in red, cool: in blue).  Every image has a random
phase, contrast and period, plus pixel noise, so a network must look at local structure:
the mean colour is the same grey for every class.  The 36/144 and 72/108 degree classes are
mirror images, so horizontal flips would change labels.  A two-conv CNN reaches about 70%
test accuracy (chance is 10%) in five epochs, half a second of CPU.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from mbnas.data._sets import ImageSet, Source

ANGLES = (0, 36, 72, 108, 144)
TINTS = {"warm": (1.0, 0.55, 0.1), "cool": (0.1, 0.55, 1.0)}
CLASSES = tuple(f"{tint}-{angle}deg" for tint in TINTS for angle in ANGLES)
SIZE = 16
TRAIN_SIZE, TEST_SIZE = 2000, 500
_SEED = 1234


def make_synthetic(folder: Path | None = None, image_size: int | None = None) -> Source:
    """The same 2000 training and 500 test images on every call, balanced over the classes
    (read from no folder, always 16 x 16: the arguments are the readers' signature)."""
    generator = torch.Generator().manual_seed(_SEED)
    train = _draw(TRAIN_SIZE, generator)
    test = _draw(TEST_SIZE, generator)
    return Source(train, test, CLASSES)


def _draw(n: int, generator: torch.Generator) -> ImageSet:
    labels = (torch.arange(n) % len(CLASSES))[torch.randperm(n, generator=generator)]
    angle = torch.tensor(ANGLES, dtype=torch.float32)[labels % len(ANGLES)] * math.pi / 180
    tint = torch.tensor(list(TINTS.values()))[labels // len(ANGLES)]
    phase = torch.rand(n, generator=generator) * 2 * math.pi
    period = 3.5 + 2.0 * torch.rand(n, generator=generator)  # pixels
    contrast = 0.06 + 0.10 * torch.rand(n, generator=generator)
    y, x = torch.meshgrid(torch.arange(SIZE, dtype=torch.float32),
                          torch.arange(SIZE, dtype=torch.float32), indexing="ij")
    along = x * angle.cos()[:, None, None] + y * angle.sin()[:, None, None]  # n x H x W
    wave = torch.sin(2 * math.pi * along / period[:, None, None] + phase[:, None, None])
    signal = (contrast[:, None, None] * wave)[:, None] * tint[:, :, None, None]  # n x 3 x H x W
    noise = 0.25 * torch.randn(n, 3, SIZE, SIZE, generator=generator)
    images = ((0.5 + signal + noise).clamp(0, 1) * 255).round().to(torch.uint8)
    return ImageSet(images, labels)
