"""``mbnas latency build``: measure every part a list of networks needs, add it to a
table, save after each entry (a killed build resumes where it stopped)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from mbnas.arch.spec import Arch
from mbnas.errors import MbnasError
from mbnas.latency.table import Meta, Table, load_table
from mbnas.units import duration


def space_members(space, count: int, *, seed: int, resolution: int | None,
                  num_classes: int) -> list[Arch]:
    """``count`` members of ``space`` drawn at random (seeded)."""
    rng = random.Random(seed)
    return [space.arch(space.sample(lambda name, choices: rng.choice(list(choices))),
                       resolution=resolution, num_classes=num_classes)
            for _ in range(count)]


def check_meta(table: Table, meta: Meta) -> None:
    """A table grows only with entries measured the same way."""
    stored = table.meta
    for field in ("runtime", "runtime_version", "threads", "batch", "resolution", "cpu"):
        if getattr(stored, field) != getattr(meta, field):
            raise MbnasError(f"latency table {table.path} was measured with {field}="
                             f"{getattr(stored, field)!r}, this build measures "
                             f"{getattr(meta, field)!r}; use another --out, or the same "
                             "settings to add to it")


# Parts are timed in chunks of this many, each chunk in interleaved rounds, then saved: a
# killed build loses one chunk at most.
CHUNK = 40


def build_table(archs: Iterable[Arch], out: str | Path, *, runtime: str, threads: int,
                batch: int, resolution: int, warmup: int = 10, repeats: int = 20,
                min_seconds: float = 0.05, rounds: int | None = None,
                networks: bool = True,
                log: Callable[[str], None] = print) -> Table:
    """Time every part ``archs`` need that ``out`` lacks (in interleaved rounds), and,
    with ``networks``, each of ``archs`` end to end (what calibrates the sum of parts:
    :meth:`Table.calibration`); save after every chunk."""
    from mbnas.arch.encoding import encode
    from mbnas.latency.measure import ROUNDS, Timer, parts

    rounds = rounds or ROUNDS
    out = Path(out)
    timer = Timer(runtime, threads, warmup=warmup, repeats=repeats, min_seconds=min_seconds)
    meta = timer.meta(batch=batch, resolution=resolution)
    if out.exists():
        table = load_table(out)
        check_meta(table, meta)
    else:
        table = Table(meta, {}, out)
    todo = {}
    archs = list(archs)
    for arch in archs:
        if arch.resolution != resolution:
            raise MbnasError(f"an architecture is at {arch.resolution} px, the table at "
                             f"{resolution}; give --resolution {arch.resolution} or the "
                             "architectures at the table's")
        for part in parts(arch, batch):
            if part.key not in table.entries:
                todo.setdefault(part.key, part)
    whole = ({encode(a): a for a in archs if encode(a) not in table.networks}
             if networks else {})
    have = len(table.entries)
    log(f"latency build: {len(archs)} network(s) need {len(todo) + have} parts, "
        f"{have} in {out} already, {len(todo)} to measure, and {len(whole)} network(s) to "
        f"time end to end ({table.describe()}; {rounds} interleaved rounds of at least "
        f"{repeats} timed calls each)")
    start = time.monotonic()
    jobs = [("part", list(todo.items())[i:i + CHUNK]) for i in range(0, len(todo), CHUNK)]
    jobs += [("network", list(whole.items())[i:i + CHUNK // 4])
             for i in range(0, len(whole), CHUNK // 4)]
    total, done = len(todo) + len(whole), 0
    for what, chunk in jobs:
        if what == "part":
            entries = timer.time_all({k: (p.module, p.shape) for k, p in chunk},
                                     rounds=rounds)
            table.entries.update(entries)
        else:
            entries = timer.time_networks(dict(chunk), batch, rounds=rounds)
            table.networks.update(entries)
        table.save(out)
        done += len(chunk)
        elapsed = time.monotonic() - start
        left = elapsed / done * (total - done)
        noisy = sum(e.noisy for e in entries.values())
        flag = f", {noisy} NOISY (rounds more than 10% apart)" if noisy else ""
        log(f"[{done}/{total}] {len(chunk)} {what}(s) timed{flag}; "
            f"{duration(elapsed)} elapsed, ~{duration(left)} left")
    if not jobs:
        table.save(out)
    noisy = [k for k, e in table.entries.items() if e.noisy]
    if noisy:
        log(f"WARNING: {len(noisy)} of {len(table.entries)} entries are noisy (their rounds' "
            "medians more than 10% apart): the machine was busy or its clock moved; rebuild "
            "them on an idle machine (delete the table, or build to another --out)")
    return table
