"""``mbnas latency build``: measure every part a list of networks needs, add it to a
table, save after each chunk, and keep the chunk's rounds beside the table after each
round (``TABLE.rounds``): a killed build resumes from the last round it finished."""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from mbnas.arch.seeds import parse_arch
from mbnas.arch.spec import Arch
from mbnas.errors import MbnasError
from mbnas.files import write_json
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

if TYPE_CHECKING:
    from mbnas.latency.measure import Rounds


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


# What a table's entries must share to be priced together (the device, the runtime and
# the protocol): a table grows, and a killed chunk resumes, only with these the same.
SAME = ("runtime", "runtime_version", "threads", "batch", "resolution", "cpu", "method",
        "canary", "rounds", "repeats", "min_seconds")


def check_meta(table: Table, meta: Meta) -> None:
    """A table grows only with entries measured the same way."""
    stored = table.meta
    for field in SAME:
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
# interleaved rounds, then saved; its rounds are kept as they end (rounds_path), so that
# a killed build loses one round at most.  A bigger chunk
# (``--chunk``) spreads each part's rounds over more of the build, so that parts timed
# far apart in it meet the same moments of a machine whose speed moves by minutes.
CHUNK = 40


def build_table(archs: Iterable[Arch], out: str | Path, *, runtime: str, threads: int,
                batch: int, resolution: int, warmup: int = 10, repeats: int | None = None,
                min_seconds: float | None = None, rounds: int | None = None,
                networks: bool = True, method: str = "isolated", canary: bool = False,
                recalibrate: bool = False, chunk: int = CHUNK,
                log: Callable[[str], None] = print) -> Table:
    """Time every part ``archs`` need that ``out`` lacks (in interleaved rounds), and,
    with ``networks``, each of ``archs`` end to end (what calibrates the sum of parts:
    :meth:`Table.calibration`); save after every chunk, and the chunk's rounds after
    every round (:func:`rounds_path`: a killed build goes on from the last round it
    finished; ``context`` from its last chunk).  ``method`` (see
    :mod:`mbnas.latency.table`): ``context`` times the parts inside ``archs`` run whole,
    ``isolated`` each part alone.  ``canary``: time MobileNetV2 beside the parts and hold
    every entry at the speed it ran at in the table's first build
    (:class:`mbnas.latency.measure.Canary`).  ``repeats``, ``min_seconds``, ``rounds``:
    the protocol (mbnas.latency.table.ROUNDS); not given, a table's own, else the
    default; a table grows only by the protocol it was measured by.  ``recalibrate``:
    then time every network the table held end to end again, all in the same rounds, and
    keep those figures (:func:`recalibrate_networks`).  ``chunk``: parts timed in the
    same rounds and saved together (:data:`CHUNK`)."""
    from mbnas.latency.measure import Rounds, Timer

    if method not in METHODS:
        raise MbnasError(f"--method: {method!r} is not allowed; choose one of "
                         f"{', '.join(METHODS)}")
    if chunk < 4:
        raise MbnasError(f"--chunk: {chunk} is too few; give at least 4 parts timed in the "
                         f"same rounds (default {CHUNK})")
    if runtime == "cuda" and method == "context":
        raise MbnasError("--method context splits a run by clocks read on the CPU, which on "
                         "CUDA would time kernel launches, not kernels; build a cuda table "
                         "with --method isolated")
    out = Path(out)
    stored = load_table(out) if out.exists() else None
    if recalibrate:
        _check_recalibrate(stored, out)
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
    held = list(table.networks)  # what a recalibration times again
    for arch in archs:
        if arch.resolution != resolution:
            raise MbnasError(f"an architecture is at {arch.resolution} px, the table at "
                             f"{resolution}; give --resolution {arch.resolution} or the "
                             "architectures at the table's")
    if method == "context":
        jobs = _context_jobs(table, archs, networks, chunk)
        what = "network(s) timed in context"
    else:
        jobs, what = _isolated_jobs(table, archs, batch, networks, chunk), "part(s) timed alone"
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
    kept = rounds_path(out)

    def rounds_done(size: int, what: str, state: Rounds | None):
        """A bigger chunk's progress, round by round (a default one logs when done)."""
        if chunk <= CHUNK:
            return None
        begun, first = time.monotonic(), state.done if state else 0

        def report(r: int) -> None:
            elapsed = time.monotonic() - begun
            left = elapsed / (r - first) * (rounds - r)
            log(f"  round {r}/{rounds} of {size} {what}; {duration(elapsed)} elapsed, "
                f"~{duration(left)} left in this chunk")
        return report

    def resumed(kind: str, items: list, what: str) -> Rounds | None:
        state = _kept_rounds(kept, kind, [k for k, _ in items], meta, log)
        if state is not None:
            log(f"resuming {len(items)} {what} from round {state.done + 1}/{rounds}: the "
                f"first {state.done} were kept in {kept}")
        return state

    def keep(kind: str):
        return lambda state: write_json(kept, {"format": Rounds.FORMAT, "kind": kind,
                                               "protocol": _protocol(meta),
                                               "rounds": state.to_json()})

    for kind, items in jobs:
        if kind == "part":
            state = resumed(kind, items, "part(s)")
            entries = timer.time_all({k: (p.module, p.shape) for k, p in items},
                                     rounds=rounds,
                                     progress=rounds_done(len(items), "part(s)", state),
                                     resume=state, checkpoint=keep(kind))
            table.entries.update(entries)
            label = "part(s) timed alone"
        elif kind == "context":
            measured = timer.time_in_context(dict(items), batch, rounds=rounds)
            entries = {}
            for parts_of in measured.values():  # a part met before keeps its first entry
                for key, entry in parts_of.items():
                    if key not in table.entries and key not in entries:
                        entries[key] = entry
            table.entries.update(entries)
            if networks:
                table.networks.update(timer.time_networks(dict(items), batch, rounds=rounds))
            label = what
        else:
            state = resumed(kind, items, "network(s)")
            entries = timer.time_networks(dict(items), batch, rounds=rounds,
                                          progress=rounds_done(len(items), "network(s)",
                                                               state),
                                          resume=state, checkpoint=keep(kind))
            table.networks.update(entries)
            label = "network(s) timed end to end"
        table.meta = replace(table.meta, canary_ms=timer.canary_ms or 0.0)
        table.save(out)
        kept.unlink(missing_ok=True)  # its rounds are in the table now
        done += len(items)
        elapsed = time.monotonic() - start
        left = elapsed / done * (total - done)
        noisy = sum(e.noisy for e in entries.values())
        flag = f", {noisy} NOISY (rounds more than 10% apart)" if noisy else ""
        log(f"[{done}/{total}] {len(items)} {label}{flag}; "
            f"{duration(elapsed)} elapsed, ~{duration(left)} left")
    if recalibrate:
        recalibrate_networks(table, timer, held, batch=batch, rounds=rounds, log=log)
    if not jobs:
        if canary and not table.meta.canary_ms:  # nothing to time, but the reference
            timer.canary(batch).read()
            table.meta = replace(table.meta, canary_ms=timer.canary(batch).settle())
    holdout = table.holdout()  # how close it comes to networks it never saw, kept in it
    table.save(out)
    kept.unlink(missing_ok=True)
    if holdout is not None:
        log(f"how close its predictions come: {holdout.describe()}")
    noisy = [k for k, e in table.entries.items() if e.noisy]
    if noisy:
        log(f"WARNING: {len(noisy)} of {len(table.entries)} entries are noisy (their rounds' "
            "medians more than 10% apart): the machine was busy or its clock moved; rebuild "
            "them on an idle machine (delete the table, or build to another --out)")
    return table


def rounds_path(out: str | Path) -> Path:
    """Where a build of the table ``out`` keeps the rounds of the chunk it is timing,
    after each round (deleted once the chunk is in the table)."""
    out = Path(out)
    return out.with_name(out.name + ".rounds")


def _protocol(meta: Meta) -> dict:
    return {f: getattr(meta, f) for f in SAME}


def _kept_rounds(path: Path, kind: str, keys: list[str], meta: Meta,
                 log: Callable[[str], None]) -> Rounds | None:
    """The rounds a killed build kept in ``path`` of this very chunk (the same parts or
    networks, measured the same way), or None: then the chunk is timed from its first
    round, and a file of another chunk is said to be set aside."""
    from mbnas.latency.measure import Rounds

    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        same = (raw.get("format") == Rounds.FORMAT and raw.get("kind") == kind
                and raw.get("protocol") == _protocol(meta))
        state = Rounds.from_json(raw.get("rounds"), keys) if same else None
    except (OSError, ValueError, AttributeError):
        state = None
    if state is None or not 0 < state.done <= meta.rounds:
        log(f"  not resuming from {path}: it holds the rounds of other {kind}s or another "
            "protocol, or does not read as rounds; timing this chunk from its first round "
            "(the file is replaced)")
        return None
    return state


def _check_recalibrate(stored: Table | None, out: Path) -> None:
    """A recalibration needs a table that timed networks end to end."""
    if stored is None:
        raise MbnasError(f"--recalibrate: latency table {out} does not exist; build it first "
                         "(mbnas latency build ARCH... or --space FILE --out TABLE)")
    if not stored.networks:
        raise MbnasError(f"--recalibrate: latency table {out} timed no network end to end, "
                         "so it has no calibration to refresh; add networks to it (mbnas "
                         "latency build ARCH... --out TABLE)")


def recalibrate_networks(table: Table, timer, texts: list[str], *, batch: int, rounds: int,
                         log: Callable[[str], None] = print) -> None:
    """Time the networks ``texts`` (encodings of ``table``'s) end to end again, all in the
    same interleaved rounds, and keep those figures: what the table's calibration is
    fitted to (:meth:`Table.calibration`) follows the device's speed now, its blocks stay
    as measured.  On a shared machine whose speed moves by minutes, most of the shift
    between two timings of the same networks is one factor common to them all
    (docs/latency.md), which the calibration's scale absorbs.  Saved once they are all
    timed: a killed recalibration leaves the table as it was."""
    from mbnas.arch.encoding import decode

    old = table.calibration()
    estimate = rounds * sum(max(timer.repeats * table.networks[t].median_ms / 1000,
                                timer.min_seconds) for t in texts)
    log(f"recalibrating: timing the table's {len(texts)} network(s) end to end again, in "
        f"the same {rounds} interleaved rounds (~{duration(estimate)}); the table is saved "
        "when all are timed")
    start = time.monotonic()
    timed = timer.time_networks({t: decode(t) for t in texts}, batch, rounds=rounds)
    shift = statistics.median(timed[t].ms(table.meta.statistic)
                              / table.networks[t].ms(table.meta.statistic) for t in texts)
    table.retimed(timed)
    table.meta = replace(table.meta, recalibrated=time.strftime("%Y-%m-%d %H:%M:%S"))
    table.save()
    noisy = sum(e.noisy for e in timed.values())
    log(f"recalibrated in {duration(time.monotonic() - start)}: the networks ran a median "
        f"{100 * (shift - 1):+.1f}% against their last timing"
        + (f" ({noisy} NOISY: rounds more than 10% apart)" if noisy else "")
        + f"; calibration {old.describe()} -> {table.calibration().describe()}")


def _context_jobs(table: Table, archs: list[Arch], networks: bool,
                  chunk: int = CHUNK) -> list[tuple]:
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
    step = chunk // 4
    return [("context", items[i:i + step]) for i in range(0, len(items), step)]


def _isolated_jobs(table: Table, archs: list[Arch], batch: int, networks: bool,
                   chunk: int = CHUNK) -> list:
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
    jobs = [("part", list(todo.items())[i:i + chunk]) for i in range(0, len(todo), chunk)]
    return jobs + [("network", list(whole.items())[i:i + chunk // 4])
                   for i in range(0, len(whole), chunk // 4)]
