"""Architecture specs: MobileNet-style networks as plain, frozen data.

An :class:`Arch` is what the papers' tables say (stem, stages, head, width
multiplier, input resolution); :func:`resolve` turns it into concrete layers
with every channel count and feature-map size fixed.  The cost model and the
PyTorch builder both read the resolved layers, so they cannot disagree.

This module imports no torch: pricing a spec takes microseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

from mbnas.errors import MbnasError

BLOCKS = ("ds", "ir")
ACTIVATIONS = ("relu", "relu6")
KERNELS = (3, 5, 7)
STRIDES = (1, 2)
ROUNDINGS = ("divisible8", "truncate")
NUM_CLASSES = 1000  # ImageNet: what budgets are priced for unless told otherwise


def _allowed(values) -> str:
    return ", ".join(str(v) for v in values)


def _check_int(where: str, value, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MbnasError(f"{where}: expected an integer, got {value!r}")
    if value < minimum:
        raise MbnasError(f"{where}: {value} is not allowed; it must be at least {minimum}")


def _check_choice(where: str, value, choices) -> None:
    if isinstance(value, bool) or value not in choices:
        raise MbnasError(f"{where}: {value!r} is not allowed; choose one of {_allowed(choices)}")


def _check_positive(where: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise MbnasError(f"{where}: expected a positive number, got {value!r}")
    if value <= 0:
        raise MbnasError(f"{where}: {value} is not allowed; it must be greater than 0")
    return float(value)


def _normalise_number(value: float) -> int | float:
    """6.0 -> 6, so that equal expansions compare and encode the same."""
    return int(value) if float(value).is_integer() else float(value)


@dataclass(frozen=True)
class Stem:
    """The first, full convolution (V1 Table 1 / V2 Table 2, row 1)."""

    channels: int = 32
    kernel: int = 3
    stride: int = 2
    activation: str = "relu6"

    def __post_init__(self) -> None:
        _check_int("stem.channels", self.channels)
        _check_choice("stem.kernel", self.kernel, KERNELS)
        _check_choice("stem.stride", self.stride, STRIDES)
        _check_choice("stem.activation", self.activation, ACTIVATIONS)


@dataclass(frozen=True)
class Stage:
    """A run of ``repeats`` identical blocks; only the first one strides.

    ``block`` is ``ds`` (depthwise-separable, V1) or ``ir`` (inverted residual
    with linear bottleneck, V2).  ``shortcut`` adds the identity shortcut to
    every block where it is legal (stride 1, equal input and output channels).
    """

    block: str
    channels: int
    repeats: int = 1
    kernel: int = 3
    stride: int = 1
    expansion: int | float = 1
    shortcut: bool = True
    activation: str = "relu6"

    def __post_init__(self) -> None:
        _check_choice("block", self.block, BLOCKS)
        _check_int("channels", self.channels)
        _check_int("repeats", self.repeats)
        _check_choice("kernel", self.kernel, KERNELS)
        _check_choice("stride", self.stride, STRIDES)
        expansion = _normalise_number(_check_positive("expansion", self.expansion))
        if self.block == "ds" and expansion != 1:
            raise MbnasError(
                f"expansion: {self.expansion} is not allowed for a 'ds' block; "
                "only 'ir' blocks expand (use block 'ir' or expansion 1)"
            )
        object.__setattr__(self, "expansion", expansion)
        if not isinstance(self.shortcut, bool):
            raise MbnasError(f"shortcut: expected true or false, got {self.shortcut!r}")
        _check_choice("activation", self.activation, ACTIVATIONS)


@dataclass(frozen=True)
class Head:
    """The last 1x1 convolution before pooling (1280 channels in V2; V1 has none)."""

    channels: int = 1280
    activation: str = "relu6"

    def __post_init__(self) -> None:
        _check_int("head.channels", self.channels)
        _check_choice("head.activation", self.activation, ACTIVATIONS)


@dataclass(frozen=True)
class Arch:
    """A whole network: stem, stages, optional head, average pool, classifier.

    Channel counts are the unscaled figures of the papers' tables; ``width``
    scales them through :func:`scale_channels` under ``rounding``.
    """

    stages: tuple[Stage, ...]
    stem: Stem = field(default_factory=Stem)
    head: Head | None = None
    width: float = 1.0
    resolution: int = 224
    num_classes: int = NUM_CLASSES
    rounding: str = "divisible8"

    def __post_init__(self) -> None:
        stages = tuple(self.stages)
        if not stages:
            raise MbnasError("stages: an architecture needs at least one stage")
        for i, stage in enumerate(stages):
            if not isinstance(stage, Stage):
                raise MbnasError(f"stages[{i}]: expected a Stage, got {stage!r}")
        object.__setattr__(self, "stages", stages)
        object.__setattr__(self, "width", float(_check_positive("width", self.width)))
        _check_int("resolution", self.resolution)
        _check_int("num_classes", self.num_classes)
        _check_choice("rounding", self.rounding, ROUNDINGS)
        _check_resolution(self)

    @property
    def strides(self) -> tuple[int, ...]:
        """The stride of the stem and of each stage's first block, in order."""
        return (self.stem.stride, *(s.stride for s in self.stages))

    @property
    def output_stride(self) -> int:
        return math.prod(self.strides)


def min_resolution(strides) -> int:
    """Smallest input for which no stride-2 layer meets a 1x1 map.

    With "same" padding a stride-2 layer maps n to ceil(n / 2), so it needs
    n >= 2, the one before it n >= 3, then 5, 9, 17 ...
    """
    need = 1
    for stride in reversed(tuple(strides)):
        if stride > 1:
            need = max(2, stride * need - (stride - 1))
    return need


def _check_resolution(arch: Arch) -> None:
    need = min_resolution(arch.strides)
    if arch.resolution < need:
        raise MbnasError(
            f"resolution: {arch.resolution} is too small for this stride pattern "
            f"(output stride {arch.output_stride}): a stride-2 layer would meet a 1x1 map; "
            f"use a resolution of at least {need}"
        )


def scale_channels(channels: int, width: float, rounding: str) -> int:
    """The one place channel counts are scaled by the width multiplier.

    ``divisible8`` is MobileNetV2's rule: round to the nearest multiple of 8,
    never below 8 and never more than 10% below ``channels * width``.
    ``truncate`` is MobileNetV1's (tf-slim): ``int(channels * width)``.
    """
    value = channels * width
    if rounding == "truncate":
        # round() first so that 0.29 * 100 gives 29, not 28.
        return max(1, int(round(value, 9)))
    scaled = max(8, int(value + 4) // 8 * 8)
    if scaled < 0.9 * value:
        scaled += 8
    return scaled


def conv_out(size: int, stride: int) -> int:
    """Output size of a conv with padding k // 2 (odd k): ceil(size / stride)."""
    return (size - 1) // stride + 1


# --- resolved layers (named tuples: resolving is on the budget-check path) ---


class Conv(NamedTuple):
    """One convolution (always followed by batch norm, never biased)."""

    name: str
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    groups: int
    in_size: int

    @property
    def out_size(self) -> int:
        return conv_out(self.in_size, self.stride)

    @property
    def weights(self) -> int:
        return self.kernel * self.kernel * (self.in_channels // self.groups) * self.out_channels

    @property
    def macs(self) -> int:
        return self.weights * self.out_size * self.out_size


class Block(NamedTuple):
    """A resolved building block with every channel count and size fixed.

    ``kind`` is ``conv`` (stem or head: one conv + BN + activation), ``ds`` or ``ir``.
    """

    name: str
    kind: str
    in_channels: int
    hidden_channels: int
    out_channels: int
    kernel: int
    stride: int
    activation: str
    residual: bool
    expand: bool
    in_size: int

    @property
    def out_size(self) -> int:
        return conv_out(self.in_size, self.stride)

    def convs(self) -> tuple[Conv, ...]:
        n, size = self.name, self.in_size
        if self.kind == "conv":
            return (
                Conv(n, self.in_channels, self.out_channels, self.kernel, self.stride, 1, size),
            )
        convs = []
        if self.expand:  # V2 Table 1: 1x1 expansion to t*k channels
            convs.append(Conv(f"{n}.expand", self.in_channels, self.hidden_channels, 1, 1, 1, size))
        hidden = self.hidden_channels
        convs.append(Conv(f"{n}.depthwise", hidden, hidden, self.kernel, self.stride, hidden, size))
        convs.append(
            Conv(f"{n}.project", hidden, self.out_channels, 1, 1, 1, conv_out(size, self.stride))
        )
        return tuple(convs)


@dataclass(frozen=True)
class Network:
    """An :class:`Arch` resolved: blocks in order, then pool and classifier."""

    arch: Arch
    blocks: tuple[Block, ...]
    features: int  # channels into the classifier

    @property
    def num_classes(self) -> int:
        return self.arch.num_classes


def _hidden_channels(in_channels: int, expansion: int | float) -> int:
    # torchvision's rule; equals tf-slim's for integer ratios on multiples of 8.
    return max(1, int(round(in_channels * expansion)))


def resolve(arch: Arch) -> Network:
    """Fix every channel count and feature-map size of ``arch``."""

    def scale(c: int) -> int:
        return scale_channels(c, arch.width, arch.rounding)

    stem = arch.stem
    channels = scale(stem.channels)
    size = arch.resolution
    blocks = [
        Block("stem", "conv", 3, channels, channels, stem.kernel, stem.stride,
              stem.activation, False, False, size)
    ]
    size = conv_out(size, stem.stride)
    for i, stage in enumerate(arch.stages, start=1):
        out = scale(stage.channels)
        for j in range(stage.repeats):
            stride = stage.stride if j == 0 else 1
            if stage.block == "ir":
                hidden = _hidden_channels(channels, stage.expansion)
                expand = stage.expansion != 1
            else:
                hidden, expand = channels, False
            residual = stage.shortcut and stride == 1 and channels == out
            blocks.append(
                Block(f"stage{i}.{j}", stage.block, channels, hidden, out, stage.kernel,
                      stride, stage.activation, residual, expand, size)
            )
            channels, size = out, conv_out(size, stride)
    if arch.head is not None:
        # V2 keeps the last conv at 1280 for width <= 1 (Sandler et al., Sec. 6.1).
        out = scale_channels(arch.head.channels, max(1.0, arch.width), arch.rounding)
        blocks.append(
            Block("head", "conv", channels, out, out, 1, 1, arch.head.activation,
                  False, False, size)
        )
        channels = out
    return Network(arch, tuple(blocks), channels)
