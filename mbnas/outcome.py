"""How a training ended: one status type and one trial record for every table.

:class:`Status` is what a trial (or a ``mbnas train`` run) came to; :class:`TrialRecord`
is one row of a run: ``trials.csv``, ``best.json`` and ``mbnas show`` are all derived
from records, so their columns and states cannot drift apart.  Torch-, Optuna- and
Ray-free.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from enum import Enum


class Status(str, Enum):
    """A training's outcome.  The values are what ``trials.csv`` and JSON files hold."""

    COMPLETE = "complete"  # trained to its last epoch
    STOPPED = "stopped"  # stopped early by the scheduler (ASHA): its accuracy is partial
    DIVERGED = "diverged"  # its loss became NaN or infinite
    FAILED = "failed"  # it raised, or its worker died and Ray's retries ran out
    OVER_BUDGET = "over_budget"  # sampled over the budget: never trained, its repair is
    INTERRUPTED = "interrupted"  # cut off by a stopped search; queued again on resume
    REPEAT = "repeat"  # an architecture the run trained already: answered, not trained
    RUNNING = "running"
    QUEUED = "queued"

    def __str__(self) -> str:
        return self.value

    @property
    def counted(self) -> bool:
        """Whether it counts toward ``--trials``: it ended for a reason of its own."""
        return self in (Status.COMPLETE, Status.STOPPED, Status.DIVERGED, Status.FAILED)

    @property
    def failed(self) -> bool:
        return self in (Status.DIVERGED, Status.FAILED)


class Exhausted(Exception):
    """The sampler keeps proposing architectures the run has trained already."""


class Role(str, Enum):
    """Why a trial of a run exists.  ``trials.csv`` and the study hold it as text, with the
    trial it comes from (``repair of #7``) or the seed it is (``seed: mobilenet_v2 x0.75``):
    :func:`parse_role` and :attr:`TrialRecord.role_text` are the only places that text is
    read or written."""

    SEARCH = "search"  # sampled by the search
    SEED = "seed"  # the widest variant of a space seed within budget, enqueued first
    REPAIR = "repair"  # an over-budget sample's repaired neighbour
    RERUN = "rerun"  # a trial cut off by an interrupted run, queued again
    REPEAT = "repeat"  # an architecture trained already: answered, not trained
    REFERENCE = "reference"  # a canonical network trained beside the search
    CONFIRMATION = "confirmation"  # a retraining of the confirmation

    def __str__(self) -> str:
        return self.value


_FROM = {Role.REPAIR: "repair of #", Role.RERUN: "rerun of #", Role.REPEAT: "repeat of #"}


def role_text(role: Role, origin: int | None = None, seed: str = "") -> str:
    """The text a run stores for a role: ``search``, ``seed: mobilenet_v2 x0.75``,
    ``repair of #7`` ..."""
    if role in _FROM:
        return f"{_FROM[role]}{origin}"
    if role is Role.SEED:
        return f"seed: {seed}"
    return role.value


def parse_role(text: str) -> tuple[Role, int | None, str]:
    """``(role, origin, seed)`` from a stored role text (runs of every version of mbnas)."""
    for role, prefix in _FROM.items():
        if text.startswith(prefix) and text[len(prefix):].isdigit():
            return role, int(text[len(prefix):]), ""
    if text.startswith("seed: "):
        return Role.SEED, None, text[len("seed: "):]
    try:
        return Role(text), None, ""
    except ValueError:
        raise ValueError(f"role {text!r} is not one of search, reference, 'seed: NAME xW', "
                         "'repair of #N', 'rerun of #N', 'repeat of #N'") from None


def trial_key(role: Role, number: int | None, name: str = "") -> str:
    """A file-name-safe id of a training: ``trial-7``, ``reference-mobilenet_v2`` or
    ``confirm-NAME``; it names the trial's weights file."""
    if role is Role.REFERENCE:  # a rival's name holds a space: "mobilenet_v2 x0.98"
        return f"reference-{name.replace(' ', '-')}"
    if role is Role.CONFIRMATION:
        return f"confirm-{name.replace(' ', '-')}"
    return f"trial-{number}"


@dataclass(frozen=True)
class TrialRecord:
    """One trial of a run (a search trial or a reference), as every table shows it."""

    number: int | None  # the search study's trial number; None for references
    name: str  # references: the seed's name
    role: Role
    state: Status
    arch: str = ""  # the target spec's one-line encoding
    macs: int = 0  # of the target spec
    params: int = 0
    val_acc: float = math.nan
    epochs: int = 0
    seconds: float = 0.0  # wall time seen by the driver
    train_seconds: float = 0.0  # of which training and validation epochs
    error: str = ""
    checkpoint: str = ""  # the trained proxy weights, where kept: weights/<key>.pt
    weights: str = ""  # "kept", why they were not kept, or "" (never trained to the end)
    origin: int | None = None  # the trial a repair, rerun or repeat comes from
    seed: str = ""  # a seed candidate's name and width, e.g. "mobilenet_v2 x0.75"
    # Its price by the metrics other than MACs and parameters that the run's budget names
    # (mbnas.costs): ((field, value), ...), e.g. (("latency_ms", 14.2),).
    costs: tuple[tuple[str, float], ...] = ()

    def cost(self, metric: str) -> float:
        """Its price by the metric named ``metric`` (``macs``, ``params`` or one of
        ``costs``); NaN where it was not priced by it."""
        if metric in ("macs", "params"):
            return getattr(self, metric)
        from mbnas.costs import metric as known

        return dict(self.costs).get(known(metric).field, math.nan)

    @property
    def label(self) -> str:
        """``7`` for a search trial, the seed's name for a reference."""
        return self.name if self.number is None else str(self.number)

    @property
    def key(self) -> str:
        return trial_key(self.role, self.number, self.name)

    @property
    def is_reference(self) -> bool:
        return self.role is Role.REFERENCE

    @property
    def role_text(self) -> str:
        return role_text(self.role, self.origin, self.seed)

    @property
    def complete(self) -> bool:
        return self.state is Status.COMPLETE

    def replace(self, **changes) -> TrialRecord:
        return dataclasses.replace(self, **changes)

    def to_row(self) -> dict:
        """The ``trials.csv`` row (and ``best.json`` entry): plain values, the role as text."""
        row = {f: getattr(self, f) for f in COLUMNS}
        row.update(self.costs)
        row["number"] = "" if self.number is None else self.number
        row["role"] = self.role_text
        row["state"] = self.state.value
        return row

    @classmethod
    def from_row(cls, row: dict) -> TrialRecord:
        """A record from a ``trials.csv`` row (strings) or a ``best.json`` entry."""
        def number(key, kind=int, default=0):
            value = row.get(key)
            if value in ("", None, "nan"):
                return default
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise ValueError(f"{key} {value!r} is not a number")
            try:
                return kind(value)
            except ValueError:
                raise ValueError(f"{key} {value!r} is not a number") from None

        def text(key, default=""):
            value = row.get(key)
            if value in ("", None):
                return default
            if not isinstance(value, str):
                raise ValueError(f"{key} {value!r} is not text")
            return value

        role, origin, seed = parse_role(text("role", "search"))
        from mbnas.costs import metrics

        costs = tuple((m.field, number(m.field, float)) for m in metrics()
                      if m.field not in COLUMNS and row.get(m.field) not in ("", None, "nan"))
        return cls(number=number("number", default=None), name=text("name"), costs=costs,
                   role=role, origin=origin, seed=seed, state=Status(row["state"]),
                   arch=text("arch"), macs=number("macs"), params=number("params"),
                   val_acc=number("val_acc", float, math.nan), epochs=number("epochs"),
                   seconds=number("seconds", float, 0.0),
                   train_seconds=number("train_seconds", float, 0.0),
                   error=text("error"), checkpoint=text("checkpoint"), weights=text("weights"))


# The columns of trials.csv, in order (origin and seed are written inside the role).
COLUMNS = ("number", "name", "role", "state", "arch", "macs", "params", "val_acc", "epochs",
           "seconds", "train_seconds", "error", "checkpoint", "weights")


def columns(records: list[TrialRecord]) -> tuple[str, ...]:
    """``trials.csv``'s columns for ``records``: :data:`COLUMNS`, then each other cost
    they were priced by, after ``params``."""
    extra = []
    for r in records:
        extra += [f for f, _ in r.costs if f not in extra]
    i = COLUMNS.index("params") + 1
    return COLUMNS[:i] + tuple(extra) + COLUMNS[i:]


def pareto_front(records: list[TrialRecord], metric: str = "macs") -> list[TrialRecord]:
    """The completed ``records`` no other completed one beats on both accuracy and cost by
    ``metric`` (ties on both kept once each), by that cost."""
    done = [r for r in records if r.complete and not math.isnan(r.cost(metric))]

    def point(r: TrialRecord) -> tuple[float, float]:
        return r.val_acc, -r.cost(metric)

    return sorted((r for r in done if not any(
        o.val_acc >= r.val_acc and o.cost(metric) <= r.cost(metric) and point(o) != point(r)
        for o in done)), key=lambda r: r.cost(metric))
