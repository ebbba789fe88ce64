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


@dataclass(frozen=True)
class TrialRecord:
    """One trial of a run (a search trial or a reference), as every table shows it."""

    number: int | None  # the search study's trial number; None for references
    name: str  # references: the seed's name
    role: str  # search, reference, "seed: mobilenet_v2 x0.75", "repair of #7", ...
    state: Status
    arch: str = ""  # the target spec's one-line encoding
    macs: int = 0  # of the target spec
    params: int = 0
    val_acc: float = math.nan
    epochs: int = 0
    seconds: float = 0.0  # wall time seen by the driver
    train_seconds: float = 0.0  # of which training and validation epochs
    error: str = ""
    checkpoint: str = ""  # the trained proxy weights, where kept
    weights: str = ""  # "kept", why they were not kept, or "" (never trained to the end)

    @property
    def label(self) -> str:
        """``7`` for a search trial, the seed's name for a reference."""
        return self.name if self.number is None else str(self.number)

    @property
    def is_reference(self) -> bool:
        return self.role == "reference"

    def to_row(self) -> dict:
        """The ``trials.csv`` row (and ``best.json`` entry): plain values."""
        row = dataclasses.asdict(self)
        row["number"] = "" if self.number is None else self.number
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

        return cls(number=number("number", default=None), name=text("name"),
                   role=text("role", "search"), state=Status(row["state"]),
                   arch=text("arch"), macs=number("macs"), params=number("params"),
                   val_acc=number("val_acc", float, math.nan), epochs=number("epochs"),
                   seconds=number("seconds", float, 0.0),
                   train_seconds=number("train_seconds", float, 0.0),
                   error=text("error"), checkpoint=text("checkpoint"), weights=text("weights"))


COLUMNS = tuple(f.name for f in dataclasses.fields(TrialRecord))
