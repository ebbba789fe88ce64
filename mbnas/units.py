"""Counts in human units: ``300M`` in, ``300.8M`` out."""

from __future__ import annotations

import math

from mbnas.errors import MbnasError

_SUFFIXES = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def parse_count(text: str, what: str = "budget") -> int:
    """``300M``, ``0.3G``, ``1.5G``, ``300000000`` or ``300e6`` as a positive integer."""
    raw = str(text).strip()
    number, suffix = raw, ""
    if raw and raw[-1].upper() in _SUFFIXES and raw[-1].isalpha():
        number, suffix = raw[:-1], raw[-1].upper()
    try:
        value = float(number) * _SUFFIXES[suffix]
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 1:
        raise MbnasError(
            f"{what}: {raw!r} is not a positive count of multiply-adds; "
            "write e.g. 300M, 0.3G, 1.5G, 300000000 or 300e6 (suffixes K, M, G)"
        )
    return int(round(value))


def format_count(n: float, digits: int = 1) -> str:
    """``300774272`` -> ``300.8M``."""
    for suffix, scale in (("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if abs(n) >= scale:
            return f"{n / scale:.{digits}f}{suffix}"
    return f"{n:g}"


def duration(seconds: float) -> str:
    """``3725`` -> ``1:02:05``: a time left or taken, as progress lines show it."""
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
