"""The canonical networks and the three ways a user names an architecture.

Every command that takes an architecture accepts a seed name (``mobilenet_v1``,
``mobilenet_v2``, ``mobilenet_v3_large``, ``mobilenet_v3_small``), a spec file
(``.yaml``/``.yml``/``.json``)
or a one-line encoded string, with optional width, resolution and class-count
overrides.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path

from mbnas.arch.encoding import EXAMPLE, decode, load_file
from mbnas.arch.kinds import stage_kinds
from mbnas.arch.spec import Arch
from mbnas.errors import MbnasError

SEEDS = ("mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small")
_SPEC_SUFFIXES = (".yaml", ".yml", ".json")


def spaces_dir() -> Path:
    """``search_spaces/``: inside the installed wheel, or at the top of a checkout."""
    here = Path(__file__).resolve().parents[1]  # the mbnas package
    for candidate in (here / "search_spaces", here.parent / "search_spaces"):
        if (candidate / "seeds").is_dir():
            return candidate
    raise MbnasError(f"cannot find the search_spaces folder next to {here}; reinstall mbnas")


@cache
def seed(name: str) -> Arch:
    """The canonical network ``name`` at width 1.0, 224x224, 1000 classes."""
    if name not in SEEDS:
        raise MbnasError(f"unknown seed {name!r}; seeds: {', '.join(SEEDS)}")
    return load_file(spaces_dir() / "seeds" / f"{name}.yaml")


def with_overrides(arch: Arch, *, width: float | None = None, resolution: int | None = None,
                   num_classes: int | None = None) -> Arch:
    """``arch`` with any of width, resolution and class count replaced (and re-validated)."""
    changes = {k: v for k, v in
               {"width": width, "resolution": resolution, "num_classes": num_classes}.items()
               if v is not None}
    return dataclasses.replace(arch, **changes) if changes else arch


def _is_file(text: str) -> bool:
    """Whether ``text`` names an existing file; a name the OS refuses (too long: a
    332-character V3-Small string, issue 18) is not one."""
    try:
        return Path(text).is_file()
    except OSError:
        return False


def parse_arch(text: str, *, width: float | None = None, resolution: int | None = None,
               num_classes: int | None = None) -> Arch:
    """Resolve ``text`` (seed name, spec file or encoded string) to an :class:`Arch`."""
    text = text.strip()
    if text in SEEDS:
        arch = seed(text)
    elif text.endswith(_SPEC_SUFFIXES) or _is_file(text):
        arch = load_file(text)
    elif text.split("_", 1)[0] in ("net", "stem", *stage_kinds()):
        arch = decode(text)
    else:
        raise MbnasError(
            f"unknown architecture {text!r}: give a seed name ({', '.join(SEEDS)}), "
            f"a spec file (.yaml, .json) or an encoded string like {EXAMPLE!r}"
        )
    return with_overrides(arch, width=width, resolution=resolution, num_classes=num_classes)
