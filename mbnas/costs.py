"""What a network costs, priced before anything trains: one idea behind every budget.

A :class:`Metric` has a name (``macs``), a unit (``MACs``), a way to price a spec and to
read and write an amount of it.  MACs and parameters are counted analytically from the
spec (:mod:`mbnas.arch.cost`); a latency metric predicts from a table measured on the
user's device.  A :class:`Budget` holds one limit per metric (a MAC budget *and* a
latency budget together, say): a spec fits when it is within every limit.

Metrics are registered by name (:func:`register`), as block kinds are
(:mod:`mbnas.arch.kinds`): a metric of one's own is a :class:`Metric` and one call.
Torch-, Optuna- and Ray-free.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from mbnas.arch.spec import Arch
from mbnas.errors import MbnasError


@dataclass(frozen=True)
class Metric:
    """One cost: ``price(arch)`` is what ``arch`` costs in ``unit``; ``parse`` reads an
    amount written by a user (``300M``), ``format`` writes one (``299.9M``).  ``column``
    names it in ``trials.csv`` and ``best.json``."""

    name: str
    unit: str
    price: Callable[[Arch], float]
    parse: Callable[[str], float]
    format: Callable[[float], str]
    description: str = ""
    column: str = ""  # default: the name
    # Whether the cost never falls as the width grows (MACs, parameters); latency can (a
    # wider network whose channels suit the runtime's kernels runs faster), and the
    # widest width within a budget is then searched for beyond the first that is over it
    # (mbnas.arch.cost.widest_within).
    monotone: bool = True

    @property
    def field(self) -> str:
        return self.column or self.name


_METRICS: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    """Make ``metric`` known by its name (a name registered before is replaced: a latency
    metric is registered again with each table)."""
    from mbnas.outcome import COLUMNS

    if not metric.name.isidentifier():
        raise MbnasError(f"metric name {metric.name!r} must be a plain identifier")
    if metric.field in COLUMNS and metric.name not in ("macs", "params"):
        raise MbnasError(f"metric {metric.name!r}: column {metric.field!r} is one trials.csv "
                         "has already; give the metric another column=")
    _METRICS[metric.name] = metric
    return metric


def unregister(name: str) -> None:
    """Forget a metric registered for a while (tests); MACs and parameters stay."""
    if name in ("macs", "params"):
        raise MbnasError(f"metric {name!r} is built in")
    _METRICS.pop(name, None)


def metric(name: str) -> Metric:
    if name not in _METRICS:
        raise MbnasError(f"unknown cost metric {name!r}; known: {', '.join(_METRICS)}")
    return _METRICS[name]


def metrics() -> tuple[Metric, ...]:
    return tuple(_METRICS.values())


def _macs(arch: Arch) -> float:
    from mbnas.arch.cost import count

    return count(arch).macs


def _params(arch: Arch) -> float:
    from mbnas.arch.cost import count

    return count(arch).params


def _parse_count(text: str) -> float:
    from mbnas.units import parse_count

    return parse_count(text)


def _format_count(value: float) -> str:
    from mbnas.units import format_count

    return format_count(value)


MACS = register(Metric("macs", "MACs", _macs, _parse_count, _format_count,
                       "multiply-adds of the target spec (the papers' convention)"))
PARAMS = register(Metric("params", "params", _params, _parse_count, _format_count,
                         "parameters of the target spec, batch norm included"))


@dataclass(frozen=True)
class Budget:
    """One limit per metric; a spec fits when it is within all of them."""

    limits: tuple[tuple[str, float], ...]

    def __post_init__(self) -> None:
        if not self.limits:
            raise MbnasError("a budget needs at least one limit")
        names = [n for n, _ in self.limits]
        if len(set(names)) != len(names):
            raise MbnasError(f"a budget names a metric twice: {', '.join(names)}")
        for name, limit in self.limits:
            metric(name)  # known
            if not (limit > 0 and math.isfinite(limit)):
                raise MbnasError(f"budget {name}: {limit!r} must be a positive number")

    @classmethod
    def of(cls, **limits: float) -> Budget:
        return cls(tuple(limits.items()))

    @property
    def metrics(self) -> tuple[Metric, ...]:
        return tuple(metric(n) for n, _ in self.limits)

    def limit(self, name: str) -> float | None:
        return dict(self.limits).get(name)

    def costs(self, arch: Arch) -> dict[str, float]:
        """``arch`` priced by every metric of the budget."""
        return {m.name: m.price(arch) for m in self.metrics}

    def load(self, arch: Arch) -> float:
        """The largest of cost / limit over the limits: at most 1 when ``arch`` fits."""
        return max(metric(n).price(arch) / limit for n, limit in self.limits)

    def fits(self, arch: Arch) -> bool:
        return all(metric(n).price(arch) <= limit for n, limit in self.limits)

    def over(self, arch: Arch) -> dict[str, float]:
        """How far ``arch`` is over each limit (negative: under), in the metric's unit:
        what Optuna's constraints record."""
        return {n: metric(n).price(arch) - limit for n, limit in self.limits}

    def text(self) -> str:
        """``300.0M MACs and 15.0 ms``."""
        return " and ".join(f"{metric(n).format(limit)} {metric(n).unit}"
                            for n, limit in self.limits)
