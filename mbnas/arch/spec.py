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

from mbnas.arch.channels import scale_channels
from mbnas.arch.kinds import Block, Conv, conv_out, kind, stage_kinds
from mbnas.errors import MbnasError

__all__ = ["ACTIVATIONS", "Arch", "Block", "Conv", "Head", "Network", "Stage", "Stem",
           "conv_out", "resolve", "scale_channels"]

# hswish: MobileNetV3's hard-swish, x * relu6(x + 3) / 6 (Howard et al. 2019, Sec. 5.2).
# name -> the torch.nn class that mbnas.nn.layers builds (this core imports no torch)
ACTIVATION_MODULES = {"relu": "ReLU", "relu6": "ReLU6", "hswish": "Hardswish"}
ACTIVATIONS = tuple(ACTIVATION_MODULES)
KERNELS = (3, 5, 7)
STRIDES = (1, 2)
ROUNDINGS = ("divisible8", "truncate")
NUM_CLASSES = 1000  # ImageNet: what budgets are priced for unless told otherwise
# resolve() expands every block: a bound far above any real MobileNet (V2 has 17 blocks)
# refuses r100000000 before it exhausts memory (issue 18).
MAX_BLOCKS = 1000


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

    ``block`` names a registered kind (:mod:`mbnas.blocks`): ``ds`` (depthwise-separable,
    V1) or ``ir`` (inverted residual with linear bottleneck, V2/V3).  ``shortcut`` adds
    the identity shortcut to every block where it is legal (stride 1, equal input and
    output channels).  ``expansion`` (a ratio) or ``expanded`` (a channel count before
    the width multiplier, as V3's tables give it) sets an ``ir`` block's hidden width;
    ``se`` adds squeeze-and-excitation after the depthwise conv (V3).
    """

    block: str
    channels: int
    repeats: int = 1
    kernel: int = 3
    stride: int = 1
    expansion: int | float = 1
    shortcut: bool = True
    activation: str = "relu6"
    expanded: int | None = None
    se: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.block, str) or self.block not in stage_kinds():
            _check_choice("block", self.block, stage_kinds())
        _check_int("channels", self.channels)
        _check_int("repeats", self.repeats)
        if self.repeats > MAX_BLOCKS:
            raise MbnasError(f"repeats: {self.repeats} is not allowed; a network has at most "
                             f"{MAX_BLOCKS} blocks (MobileNetV2 has 17)")
        _check_choice("kernel", self.kernel, KERNELS)
        _check_choice("stride", self.stride, STRIDES)
        expansion = _normalise_number(_check_positive("expansion", self.expansion))
        object.__setattr__(self, "expansion", expansion)
        if self.expanded is not None:
            _check_int("expanded", self.expanded)
        for flag in ("shortcut", "se"):
            if not isinstance(getattr(self, flag), bool):
                raise MbnasError(f"{flag}: expected true or false, got {getattr(self, flag)!r}")
        _check_choice("activation", self.activation, ACTIVATIONS)
        kind(self.block).check(self)


@dataclass(frozen=True)
class Head:
    """The last 1x1 convolution before pooling (1280 channels in V2, 960 in V3-Large; V1
    has none) and, in V3's efficient last stage, a hidden fully connected layer of ``fc``
    units between pooling and the classifier (Howard et al. 2019, Sec. 5.1).

    Without ``fc`` the conv keeps its channels for widths below 1, as V2 does (Sandler
    et al., Sec. 6.1); with it, conv and fc scale with the width like every layer, as in
    the reference MobileNetV3.
    """

    channels: int = 1280
    activation: str = "relu6"
    fc: int | None = None

    def __post_init__(self) -> None:
        _check_int("head.channels", self.channels)
        _check_choice("head.activation", self.activation, ACTIVATIONS)
        if self.fc is not None:
            _check_int("head.fc", self.fc)


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
        blocks = sum(s.repeats for s in stages)
        if blocks > MAX_BLOCKS:
            raise MbnasError(f"stages: {blocks} blocks in all is not allowed; a network has at "
                             f"most {MAX_BLOCKS} blocks (MobileNetV2 has 17)")
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


# --- resolved layers (named tuples: resolving is on the budget-check path) ---


@dataclass(frozen=True)
class Network:
    """An :class:`Arch` resolved: blocks in order, then pool, the hidden fully connected
    layer where the head has one, and the classifier."""

    arch: Arch
    blocks: tuple[Block, ...]
    features: int  # channels out of the last block
    hidden_fc: int = 0  # units of the fully connected layer after pooling (V3), 0 if none
    fc_activation: str = "relu6"

    @property
    def num_classes(self) -> int:
        return self.arch.num_classes

    @property
    def classifier_in(self) -> int:
        return self.hidden_fc or self.features

    def fcs(self) -> tuple[tuple[str, int, int], ...]:
        """The fully connected layers after pooling: (name, inputs, outputs)."""
        hidden = (("hidden_fc", self.features, self.hidden_fc),) if self.hidden_fc else ()
        return (*hidden, ("classifier", self.classifier_in, self.num_classes))


def resolve(arch: Arch) -> Network:
    """Fix every channel count and feature-map size of ``arch``."""

    def scale(c: int) -> int:
        return scale_channels(c, arch.width, arch.rounding)

    stem = arch.stem
    channels = scale(stem.channels)
    size = arch.resolution
    blocks = [Block("stem", "conv", 3, channels, channels, stem.kernel, stem.stride,
                    stem.activation, False, 0, size)]
    size = conv_out(size, stem.stride)
    for i, stage in enumerate(arch.stages, start=1):
        block_kind = kind(stage.block)
        out = scale(stage.channels)
        for j in range(stage.repeats):
            stride = stage.stride if j == 0 else 1
            hidden = block_kind.hidden_channels(stage, channels, scale)
            residual = stage.shortcut and stride == 1 and channels == out
            blocks.append(Block(f"stage{i}.{j}", stage.block, channels, hidden, out,
                                stage.kernel, stride, stage.activation, residual,
                                block_kind.se_channels(stage, hidden), size))
            channels, size = out, conv_out(size, stride)
    hidden_fc, fc_activation = 0, "relu6"
    head = arch.head
    if head is not None:
        if head.fc is None:
            # V2 keeps the last conv at 1280 for width <= 1 (Sandler et al., Sec. 6.1).
            out = scale_channels(head.channels, max(1.0, arch.width), arch.rounding)
        else:
            out, hidden_fc, fc_activation = scale(head.channels), scale(head.fc), head.activation
        blocks.append(Block("head", "conv", channels, out, out, 1, 1, head.activation,
                            False, 0, size))
        channels = out
    return Network(arch, tuple(blocks), channels, hidden_fc, fc_activation)
