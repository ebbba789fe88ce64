"""Block kinds: what a stage's ``block`` name means, registered once per kind.

A kind (one module under :mod:`mbnas.blocks`) says which stage options it takes and
how they are written in the one-line encoding, how wide its hidden layer is, which
convolutions the cost model prices, and which ``nn.Module`` builds it.  The spec, the
encoding, the cost model, the search space, the builder and export all ask the kind;
none of them branches on a kind's name.

This module and the kinds' descriptions import no torch: a kind's ``nn.Module`` class
is made by :meth:`BlockKind.module_class`, which imports torch when a network is built.
"""

from __future__ import annotations

import importlib
import inspect
import textwrap
from typing import ClassVar, NamedTuple

from mbnas.arch.channels import scale_channels
from mbnas.errors import MbnasError

# Stage options that only some kinds take, with the value meaning "not used".
OPTIONS = {"expansion": 1, "expanded": None, "se": False}


def conv_out(size: int, stride: int) -> int:
    """Output size of a conv with padding k // 2 (odd k): ceil(size / stride)."""
    return (size - 1) // stride + 1


class Conv(NamedTuple):
    """One priced convolution: followed by batch norm and unbiased, unless said otherwise
    (squeeze-and-excitation's two 1x1 convs on the pooled vector are biased, not normed)."""

    name: str
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    groups: int
    in_size: int
    norm: bool = True
    bias: bool = False

    @property
    def out_size(self) -> int:
        return conv_out(self.in_size, self.stride)

    @property
    def weights(self) -> int:
        return self.kernel * self.kernel * (self.in_channels // self.groups) * self.out_channels

    @property
    def params(self) -> int:
        return self.weights + 2 * self.out_channels * self.norm + self.out_channels * self.bias

    @property
    def macs(self) -> int:
        return self.weights * self.out_size * self.out_size


class Block(NamedTuple):
    """A resolved block with every channel count and size fixed: one row of the table
    that the builder and ``mbnas export`` turn into modules.  ``se_channels`` is the
    squeeze width of squeeze-and-excitation, 0 where there is none."""

    name: str
    kind: str
    in_channels: int
    hidden_channels: int
    out_channels: int
    kernel: int
    stride: int
    activation: str
    residual: bool
    se_channels: int
    in_size: int

    @property
    def out_size(self) -> int:
        return conv_out(self.in_size, self.stride)

    def convs(self) -> tuple[Conv, ...]:
        return kind(self.kind).convs(self)


def squeeze_channels(hidden: int) -> int:
    """V3's squeeze width: a quarter of the SE block's input, rounded to a multiple of 8
    (torchvision's ``_make_divisible(c // 4, 8)``)."""
    return scale_channels(hidden // 4, 1.0, "divisible8")


def squeeze_excite_convs(block: Block) -> tuple[Conv, ...]:
    """SE's two biased 1x1 convs on the pooled vector: priced as convolutions at 1x1.
    The channel-wise rescaling is no multiply-add of the papers' convention."""
    if not block.se_channels:
        return ()
    c, sq = block.hidden_channels, block.se_channels
    return (Conv(f"{block.name}.se.reduce", c, sq, 1, 1, 1, 1, norm=False, bias=True),
            Conv(f"{block.name}.se.expand", sq, c, 1, 1, 1, 1, norm=False, bias=True))


class BlockKind:
    """One kind of block.  Subclasses set the class attributes and override
    :meth:`hidden_channels`, :meth:`convs` and :meth:`module_class`."""

    name: ClassVar[str]  # the encoding prefix and the value of Stage.block
    summary: ClassVar[str]  # one line: what it is and where it comes from
    options: ClassVar[tuple[str, ...]] = ()  # which of OPTIONS it takes
    # Encoding tokens of its options: a number after a letter, and bare flags.
    numeric_tokens: ClassVar[dict[str, str]] = {}
    flag_tokens: ClassVar[dict[str, tuple[str, object]]] = {}
    # The Block fields its module takes: in order, then by keyword.
    module_args: ClassVar[tuple[str, ...]] = ()
    module_keywords: ClassVar[tuple[str, ...]] = ()
    stage: ClassVar[bool] = True  # False for the stem/head conv: not a stage's block

    # --- the spec ---------------------------------------------------------------------

    def check(self, stage) -> None:
        """Refuse options this kind does not take (subclasses add their own checks)."""
        for option, unused in OPTIONS.items():
            value = getattr(stage, option)
            if option not in self.options and value != unused:
                raise MbnasError(f"{option}: {value!r} is not allowed for a {self.name!r} block "
                                 f"({self.summary}); it takes "
                                 f"{', '.join(self.options) or 'none of ' + ', '.join(OPTIONS)}")

    def encode_options(self, stage) -> list[str]:
        """The tokens of this kind's options in the one-line form, e.g. ``['e6']``."""
        return []

    def hidden_channels(self, stage, in_channels: int, scale) -> int:
        """The width between the block's first and last conv; ``scale`` applies the
        network's width multiplier and rounding to a channel count of the spec."""
        return in_channels

    def se_channels(self, stage, hidden: int) -> int:
        """The squeeze width of the stage's squeeze-and-excitation, 0 where it has none
        (a kind without the ``se`` option never has it)."""
        return squeeze_channels(hidden) if getattr(stage, "se", False) else 0

    # --- the cost model ---------------------------------------------------------------

    def convs(self, block: Block) -> tuple[Conv, ...]:
        raise NotImplementedError

    # --- the module -------------------------------------------------------------------

    def module_class(self) -> type:
        """The ``nn.Module`` class for this kind (imports torch)."""
        raise NotImplementedError

    def module(self, block: Block):
        return self.module_class()(*(getattr(block, a) for a in self.module_args),
                                   **{k: getattr(block, k) for k in self.module_keywords})

    def module_source(self) -> str:
        """The module class's source, as ``mbnas export`` copies it into ``model.py``."""
        return textwrap.dedent(inspect.getsource(self.module_class()))


_KINDS: dict[str, BlockKind] = {}
_BUILTIN = "mbnas.blocks"
_builtin_loaded = False


def register(block_kind: BlockKind) -> BlockKind:
    """Make ``block_kind`` known by its name (once; a second kind of that name is refused)."""
    _registry()  # the built-in kinds first, whoever registers first
    name = block_kind.name
    if not name.isalpha() or not name.islower():
        raise MbnasError(f"block kind name {name!r}: use lower-case letters only")
    if name in _KINDS and type(_KINDS[name]) is not type(block_kind):
        raise MbnasError(f"block kind {name!r} is already registered "
                         f"({type(_KINDS[name]).__name__})")
    _KINDS[name] = block_kind
    return block_kind


def unregister(name: str) -> None:
    _KINDS.pop(name, None)


def _registry() -> dict[str, BlockKind]:
    global _builtin_loaded
    if not _builtin_loaded:
        _builtin_loaded = True
        importlib.import_module(_BUILTIN)  # registers the built-in kinds
    return _KINDS


def kind(name: str) -> BlockKind:
    """The kind called ``name``, or an error naming the kinds there are."""
    kinds = _registry()
    if name not in kinds:
        raise MbnasError(f"block: {name!r} is not allowed; choose one of "
                         f"{', '.join(stage_kinds())}")
    return kinds[name]


def stage_kinds() -> tuple[str, ...]:
    """The names a stage's ``block`` may take."""
    return tuple(n for n, k in _registry().items() if k.stage)
