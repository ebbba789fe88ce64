"""mbnas: neural architecture search over the MobileNet design space.

``import mbnas`` is light (no torch); :func:`build` imports torch when called.
"""

from __future__ import annotations

from mbnas._version import __version__
from mbnas.arch.cost import Cost, count
from mbnas.arch.encoding import decode, encode
from mbnas.arch.seeds import parse_arch
from mbnas.arch.spec import Arch, Head, Stage, Stem
from mbnas.errors import MbnasError

__all__ = ["Arch", "Cost", "Head", "MbnasError", "Stage", "Stem", "build", "count", "decode",
           "encode", "load", "parse_arch", "__version__"]


def build(arch, *, width=None, resolution=None, num_classes=None, dropout: float = 0.0):
    """The ``torch.nn.Module`` for ``arch``: an :class:`Arch`, seed name, spec file or string."""
    from mbnas.nn.network import build as _build

    if not isinstance(arch, Arch):
        arch = parse_arch(str(arch), width=width, resolution=resolution, num_classes=num_classes)
    return _build(arch, dropout=dropout)


def load(path):
    """A model written by ``mbnas export`` (or :func:`mbnas.export.export`): the exported
    class with its weights loaded, in eval mode."""
    from mbnas.export import load as _load

    return _load(path)
