"""``mbnas latency build``: measure every part a list of networks needs, add it to a
table, save after each chunk (a killed build resumes where it stopped)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

from mbnas.arch.seeds import parse_arch
from mbnas.arch.spec import Arch
from mbnas.errors import MbnasError
from mbnas.latency.table import (
    CALL,
    METHODS,
    MIN_SECONDS,
    REPEATS,
    ROUNDS,
    Meta,
    Table,
    load_table,
)
from mbnas.units import duration


def space_members(space, count: int, *, seed: int, resolution: int | None,
                  num_classes: int) -> list[Arch]:
    """``count`` members of ``space`` drawn at random (seeded)."""
    rng = random.Random(seed)
    return [space.arch(space.sample(lambda name, choices: rng.choice(list(choices))),
                       resolution=resolution, num_classes=num_classes)
            for _ in range(count)]


# What a table built for a search times besides the space's members: MobileNetV1 at a
# width where, truncated, none of its channel counts after the stem is a multiple of 4
# (22, 45, 91, 183, 367, 735), which ONNX Runtime runs 1.7-1.8x slower per multiply-add
# than its aligned neighbours (mbnas.latency.fit.ALIGNMENT).  With its blocks the table
# prices such a convolution at any width: the V1 rival a search scales to its budget.
PROBES = (("mobilenet_v1", 0.718),)


def probes(*, resolution: int, num_classes: int) -> list[Arch]:
    """The networks of :data:`PROBES` at ``resolution`` with ``num_classes``."""
    return [parse_arch(name, width=width, resolution=resolution, num_classes=num_classes)
            for name, width in PROBES]


def check_meta(table: Table, meta: Meta) -> None:
    """A table grows only with entries measured the same way."""
    stored = table.meta
    for field in ("runtime", "runtime_version", "threads", "batch", "resolution", "cpu",
                  "method", "canary", "rounds", "repeats", "min_seconds"):
        if field == "canary" and stored.canary != meta.canary:
            held = "with" if stored.canary else "without"
            other = "without" if stored.canary else "with"
            raise MbnasError(f"latency table {table.path} was built {held} a reference "
                             f"network (--canary), this build {other} one; use another "
                             "--out, or the same settings to add to it")
        if getattr(stored, field) != getattr(meta, field):
            raise MbnasError(f"latency table {table.path} was measured with {field}="
                             f"{getattr(stored, field)!r}, this build measures "
                             f"{getattr(meta, field)!r}; use another --out, or the same "
                             "settings to add to it")


# The reference network a build with ``canary`` times beside the parts.
CANARY = "mobilenet_v2"


# Parts are timed in chunks of this many (networks: a quarter of it), each chunk in
# interleaved rounds, then saved: a killed build loses one chunk at most.
CHUNK = 40


def build_table(archs: Iterable[Arch], out: str | Path, *, runtime: str, threads: int,
                batch: int, resolution: int, warmup: int = 10, repeats: int | None = None,
                min_seconds: float | None = None, rounds: int | None = None,
                networks: bool = True, method: str = "isolated", canary: bool = False,
                log: Callable[[str], None] = print) -> Table:
    """Time every part ``archs`` need that ``out`` lacks (in interleaved rounds), and,
    with ``networks``, each of ``archs`` end to end (what calibrates the sum of parts:
    :meth:`Table.calibration`); save after every chunk.  ``method`` (see
    :mod:`mbnas.latency.table`): ``context`` times the parts inside ``archs`` run whole,
    ``isolated`` each part alone.  ``canary``: time MobileNetV2 beside the parts and hold
    every entry at the speed it ran at in the table's first build
    (:class:`mbnas.latency.measure.Canary`).  ``repeats``, ``min_seconds``, ``rounds``:
    the protocol (mbnas.latency.table.ROUNDS); not given, a table's own, else the
    default; a table grows only by the protocol it was measured by."""
    from mbnas.latency.measure import Timer

    if method not in METHODS:
        raise MbnasError(f"--method: {method!r} is not allowed; choose one of "
                         f"{', '.join(METHODS)}")
    if runtime == "cuda" and method == "context":
        raise MbnasError("--method context splits a run by clocks read on the CPU, which on "
                         "CUDA would time kernel launches, not kernels; build a cuda table "
                         "with --method isolated")
    out = Path(out)
    stored = load_table(out) if out.exists() else None
    if stored is not None:  # the protocol it was measured by, unless another is asked for
        m = stored.meta
        rounds, repeats = rounds or m.rounds, repeats or m.repeats
        min_seconds = m.min_seconds if min_seconds is None else min_seconds
    rounds, repeats = rounds or ROUNDS, repeats or REPEATS
    min_seconds = MIN_SECONDS if min_seconds is None else min_seconds
    reference = parse_arch(CANARY, resolution=resolution) if canary else None
    timer = Timer(runtime, threads, warmup=warmup, repeats=repeats, min_seconds=min_seconds,
                  rounds=rounds, canary=reference)
    meta = timer.meta(batch=batch, resolution=resolution, method=method)
    if stored is not None:
        table = stored
        check_meta(table, meta)
        timer.canary_reference = table.meta.canary_ms or None
    else:
        table = Table(meta, {}, out)
    archs = list(archs)
    for arch in archs:
        if arch.resolution != resolution:
            raise MbnasError(f"an architecture is at {arch.resolution} px, the table at "
                             f"{resolution}; give --resolution {arch.resolution} or the "
                             "architectures at the table's")
    if method == "context":
        jobs, what = _context_jobs(table, archs, networks), "network(s) timed in context"
    else:
        jobs, what = _isolated_jobs(table, archs, batch, networks), "part(s) timed alone"
    have = len(table.entries)
    todo = sum(len(chunk) for kind, chunk in jobs if kind == "part")
    whole = sum(len(chunk) for kind, chunk in jobs if kind != "part")
    if method == "context":
        log(f"latency build: {len(archs)} network(s), {have} parts in {out} already; "
            f"{whole} network(s) to time whole, once split into their blocks' shares and "
            f"once end to end ({table.describe()}; {rounds} interleaved rounds of at least "
            f"{repeats} timed calls each)")
    else:
        log(f"latency build: {len(archs)} network(s) need {todo + have} parts, "
            f"{have} in {out} already, {todo} to measure, and {whole} network(s) to "
            f"time end to end ({table.describe()}; {rounds} interleaved rounds of at least "
            f"{repeats} timed calls each)")
    start = time.monotonic()
    total, done = todo + whole, 0
    for kind, chunk in jobs:
        if kind == "part":
            entries = timer.time_all({k: (p.module, p.shape) for k, p in chunk},
                                     rounds=rounds)
            table.entries.update(entries)
            label = "part(s) timed alone"
        elif kind == "context":
            measured = timer.time_in_context(dict(chunk), batch, rounds=rounds)
            entries = {}
            for parts_of in measured.values():  # a part met before keeps its first entry
                for key, entry in parts_of.items():
                    if key not in table.entries and key not in entries:
                        entries[key] = entry
            table.entries.update(entries)
            if networks:
                table.networks.update(timer.time_networks(dict(chunk), batch, rounds=rounds))
            label = what
        else:
            entries = timer.time_networks(dict(chunk), batch, rounds=rounds)
            table.networks.update(entries)
            label = "network(s) timed end to end"
        table.meta = replace(table.meta, canary_ms=timer.canary_ms or 0.0)
        table.save(out)
        done += len(chunk)
        elapsed = time.monotonic() - start
        left = elapsed / done * (total - done)
        noisy = sum(e.noisy for e in entries.values())
        flag = f", {noisy} NOISY (rounds more than 10% apart)" if noisy else ""
        log(f"[{done}/{total}] {len(chunk)} {label}{flag}; "
            f"{duration(elapsed)} elapsed, ~{duration(left)} left")
    if not jobs:
        if canary and not table.meta.canary_ms:  # nothing to time, but the reference
            timer.canary(batch).read()
            table.meta = replace(table.meta, canary_ms=timer.canary(batch).settle())
    holdout = table.holdout()  # how close it comes to networks it never saw, kept in it
    table.save(out)
    if holdout is not None:
        log(f"how close its predictions come: {holdout.describe()}")
    noisy = [k for k, e in table.entries.items() if e.noisy]
    if noisy:
        log(f"WARNING: {len(noisy)} of {len(table.entries)} entries are noisy (their rounds' "
            "medians more than 10% apart): the machine was busy or its clock moved; rebuild "
            "them on an idle machine (delete the table, or build to another --out)")
    return table


def _context_jobs(table: Table, archs: list[Arch], networks: bool) -> list[tuple]:
    """Chunks of the networks to run whole: those that need a part the table lacks, and,
    with ``networks``, those not yet timed end to end."""
    from mbnas.arch.encoding import encode
    from mbnas.latency.table import keys

    todo: dict[str, Arch] = {}
    for arch in archs:
        text = encode(arch)
        lacks = any(k not in table.entries for _, k in keys(arch)) or CALL not in table.entries
        if lacks or (networks and text not in table.networks):
            todo.setdefault(text, arch)
    items = list(todo.items())
    step = CHUNK // 4
    return [("context", items[i:i + step]) for i in range(0, len(items), step)]


def _isolated_jobs(table: Table, archs: list[Arch], batch: int, networks: bool) -> list:
    """Chunks of the parts ``archs`` need that the table lacks, each timed alone, then of
    the networks to time end to end."""
    from mbnas.arch.encoding import encode
    from mbnas.latency.measure import parts

    todo = {}
    for arch in archs:
        for part in parts(arch, batch):
            if part.key not in table.entries:
                todo.setdefault(part.key, part)
    whole = ({encode(a): a for a in archs if encode(a) not in table.networks}
             if networks else {})
    jobs = [("part", list(todo.items())[i:i + CHUNK]) for i in range(0, len(todo), CHUNK)]
    return jobs + [("network", list(whole.items())[i:i + CHUNK // 4])
                   for i in range(0, len(whole), CHUNK // 4)]
