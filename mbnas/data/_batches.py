"""Batches of an ImageSet, augmented and normalised batch-wise in torch.

Images stay uint8 until they reach the device: a batch is gathered on the CPU, copied
(pinned, non-blocking) to the device, cropped and flipped there as one gather, then
converted and normalised by one fused multiply-add into the output layout.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from mbnas.data._sets import ImageSet, check_count
from mbnas.errors import MbnasError

Batch = tuple[torch.Tensor, torch.Tensor]


class _Plan(NamedTuple):
    """One epoch's draws, indexed by position in ``order`` (so they ignore the batch size)."""

    order: torch.Tensor  # image indices, CPU
    shifts: torch.Tensor | None  # 2 x N crop offsets (rows, cols) in [0, 2 * pad], on device
    flips: torch.Tensor | None  # N bools, on device


class Batches:
    """Iterate (x, y) batches of an ImageSet: x float32 normalised N x 3 x H x W, y int64.

    With ``train``, every epoch reshuffles and draws a random crop of the image padded by
    ``pad`` zeros and, with ``flip``, a random horizontal mirror per image, all from a
    generator seeded by (``seed``, epoch): the same seed and epoch give the same batches.
    Each ``iter()`` starts the next epoch; :meth:`set_epoch` picks it (e.g. on resume).
    Without ``train``: file order, no augmentation, and the last short batch is kept.
    Grayscale images are repeated to three channels, since MobileNet stems take RGB.
    """

    def __init__(self, data: ImageSet, batch_size: int, *, mean: Sequence[float],
                 std: Sequence[float], train: bool, flip: bool = True, pad: int = 4,
                 seed: int = 0, device: str | torch.device = "cpu", channels_last: bool = True,
                 drop_last: bool | None = None) -> None:
        check_count("batch_size", batch_size, 1)
        check_count("pad", pad, 0)
        check_count("seed", seed, 0)
        self.data = data
        self.batch_size = batch_size
        self.train = train
        self.flip = flip
        self.pad = pad
        self.seed = seed
        self.device = torch.device(device)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.drop_last = train if drop_last is None else drop_last
        self._scale, self._shift = _affine(mean, std, self.device)
        self._epoch = 0
        if self.drop_last and len(data) < batch_size:
            raise MbnasError(f"batch_size: {batch_size} is more than the {len(data)} images, "
                             "so dropping the last short batch leaves none; use a smaller batch")

    def __len__(self) -> int:
        """The number of batches per epoch."""
        n, size = len(self.data), self.batch_size
        return n // size if self.drop_last else -(-n // size)

    def set_epoch(self, epoch: int) -> None:
        """Make the next ``iter()`` yield epoch ``epoch`` (0 is the first)."""
        check_count("epoch", epoch, 0)
        self._epoch = epoch

    def __iter__(self) -> Iterator[Batch]:
        # Not a generator function: the epoch advances at iter(), not at the first next().
        plan = self._plan(self._epoch)
        self._epoch += 1
        return (self._batch(plan, slice(i * self.batch_size, (i + 1) * self.batch_size))
                for i in range(len(self)))

    def _plan(self, epoch: int) -> _Plan:
        n = len(self.data)
        if not self.train:
            return _Plan(torch.arange(n), None, None)
        generator = torch.Generator().manual_seed(_epoch_seed(self.seed, epoch))
        order = torch.randperm(n, generator=generator)
        # Always drawn, so that turning crops or flips off leaves the shuffle as it was.
        shifts = torch.randint(0, 2 * self.pad + 1, (2, n), generator=generator)
        flips = torch.rand(n, generator=generator) < 0.5
        return _Plan(order,
                     shifts.to(self.device) if self.pad else None,
                     flips.to(self.device) if self.flip else None)

    def _batch(self, plan: _Plan, part: slice) -> Batch:
        index = plan.order[part]
        x = self._to_device(self.data.images.index_select(0, index))
        y = self._to_device(self.data.labels.index_select(0, index))
        if plan.shifts is not None or plan.flips is not None:
            shifts = plan.shifts[:, part] if plan.shifts is not None else None
            flips = plan.flips[part] if plan.flips is not None else None
            x = crop_and_flip(x, self.pad, shifts, flips)
        return self._normalise(x), y

    def _to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cpu":
            return tensor
        if self.device.type == "cuda":
            tensor = tensor.pin_memory()  # lets the copy below overlap with compute
        return tensor.to(self.device, non_blocking=True)

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 N x C x H x W -> float32 N x 3 x H x W, (x / 255 - mean) / std, one pass."""
        n, _, h, w = x.shape
        out = torch.empty((n, 3, h, w), device=x.device, memory_format=self.memory_format)
        # x * scale + shift; a 1-channel x broadcasts against the 3-channel statistics.
        return torch.addcmul(self._shift, x, self._scale, out=out)


def crop_and_flip(x: torch.Tensor, pad: int, shifts: torch.Tensor | None,
                  flips: torch.Tensor | None) -> torch.Tensor:
    """Per-image crops of the zero-padded batch and optional mirrors, as a single gather.

    ``shifts`` (2 x N, in [0, 2 * pad]) is where each crop starts in the padded image;
    ``flips`` (N bools) mirrors the crop left to right.  Same as torchvision's RandomCrop
    with ``padding=pad`` followed by RandomHorizontalFlip, for a whole batch at once.
    """
    n, c, h, w = x.shape
    device = x.device
    rows = torch.arange(h, device=device).expand(n, h)
    cols = torch.arange(w, device=device).expand(n, w)
    if flips is not None:
        cols = torch.where(flips[:, None], w - 1 - cols, cols)
    if shifts is not None and pad:
        x = F.pad(x, (pad, pad, pad, pad))
        rows = rows + shifts[0, :, None]
        cols = cols + shifts[1, :, None]
    image = torch.arange(n, device=device)[:, None, None, None]
    channel = torch.arange(c, device=device)[None, :, None, None]
    return x[image, channel, rows[:, None, :, None], cols[:, None, None, :]]


def _affine(mean: Sequence[float], std: Sequence[float],
            device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``scale`` and ``shift`` (1 x 3 x 1 x 1) with x_uint8 * scale + shift = (x/255 - mean)/std."""
    mean_t, std_t = _stats("mean", mean), _stats("std", std)
    if bool((std_t <= 0).any()):
        raise MbnasError(f"std: {tuple(std)} is not allowed; every value must be greater than 0")
    scale = (1 / (255 * std_t)).expand(3)  # one value for grayscale serves all three channels
    shift = (-mean_t / std_t).expand(3)
    return (scale.reshape(1, 3, 1, 1).to(device, torch.float32),
            shift.reshape(1, 3, 1, 1).to(device, torch.float32))


def _stats(where: str, values: Sequence[float]) -> torch.Tensor:
    try:
        tensor = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
    except (TypeError, ValueError, RuntimeError) as err:
        raise MbnasError(f"{where}: expected 1 or 3 numbers, got {values!r}") from err
    if len(tensor) not in (1, 3) or not bool(tensor.isfinite().all()):
        raise MbnasError(f"{where}: expected 1 or 3 finite numbers, got {values!r}")
    return tensor


def _epoch_seed(seed: int, epoch: int) -> int:
    """A seed for (seed, epoch): SeedSequence mixes them, so nearby pairs do not overlap."""
    return int(np.random.SeedSequence((seed, epoch)).generate_state(1, dtype=np.uint64)[0])
