"""Latency as a cost metric: a spec priced from a table (torch-free)."""

from __future__ import annotations

import math
import re
from pathlib import Path

from mbnas.costs import Metric, register
from mbnas.errors import MbnasError
from mbnas.latency.table import Table, load_table

_TIME = re.compile(r"^\s*([0-9.eE+-]+)\s*(ms|s|us|µs)\s*$")
_SCALE = {"ms": 1.0, "s": 1000.0, "us": 0.001, "µs": 0.001}


def is_time(text: str) -> bool:
    """Whether ``text`` is written in a time unit (``15ms``, ``0.015s``, ``800us``)."""
    return bool(_TIME.match(str(text)))


def parse_ms(text: str) -> float:
    """``15ms``, ``0.015s`` or ``15000us`` as milliseconds; a plain number is ms."""
    raw = str(text).strip()
    match = _TIME.match(raw)
    try:
        value = float(match.group(1)) * _SCALE[match.group(2)] if match else float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise MbnasError(f"latency: {raw!r} is not a positive time; write e.g. 15ms, "
                         "0.015s or 15000us")
    return value


def latency_metric(table: Table) -> Metric:
    """The metric ``latency`` (ms) that ``table`` predicts; registered, so that budgets,
    objectives and tables can name it."""
    return register(Metric("latency", "ms", table.predict, parse_ms, lambda v: f"{v:.2f}",
                           f"predicted from {table.path} ({table.describe()})",
                           column="latency_ms", monotone=False))


def use_table(path: str | Path, *, runtime: str | None = None,
              resolution: int | None = None) -> Table:
    """Load a table for pricing, refusing one measured on another runtime or resolution
    than asked for, and register its metric."""
    table = load_table(path)
    if runtime is not None and table.meta.runtime != runtime:
        raise MbnasError(f"latency table {path} was measured with {table.meta.runtime}, "
                         f"this command asks for {runtime}; build one with `mbnas latency "
                         f"build --runtime {runtime}` or pass --latency-runtime "
                         f"{table.meta.runtime}")
    if resolution is not None and table.meta.resolution != resolution:
        raise MbnasError(f"latency table {path} was measured at {table.meta.resolution} px, "
                         f"this command prices networks at {resolution} px; build a table at "
                         f"{resolution} px (mbnas latency build --resolution {resolution})")
    latency_metric(table)
    return table
