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


def build_table(archs: Iterable[Arch], out: str | Path, *, runtime: str, threads: int,
                batch: int, resolution: int, warmup: int = 10, repeats: int = 50,
                min_seconds: float = 0.2,
                log: Callable[[str], None] = print) -> Table:
    from mbnas.latency.measure import Timer, parts

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
    have = len(table.entries)
    log(f"latency build: {len(archs)} network(s) need {len(todo) + have} parts, "
        f"{have} in {out} already, {len(todo)} to measure ({table.describe()}; "
        f"{warmup} warm-up and at least {repeats} timed calls each)")
    start = time.monotonic()
    for i, (key, part) in enumerate(todo.items(), 1):
        entry = timer.time(part.module, part.shape)
        table.entries[key] = entry
        table.save(out)
        elapsed = time.monotonic() - start
        left = elapsed / i * (len(todo) - i)
        flag = f"  NOISY: quartiles {100 * entry.spread:.0f}% apart" if entry.noisy else ""
        log(f"[{i}/{len(todo)}] {key}: {entry.median_ms:.3f} ms{flag}; "
            f"{duration(elapsed)} elapsed, ~{duration(left)} left")
    if not todo:
        table.save(out)
    noisy = [k for k, e in table.entries.items() if e.noisy]
    if noisy:
        log(f"WARNING: {len(noisy)} of {len(table.entries)} entries are noisy (quartiles "
            "more than 10% apart): the machine was busy or its clock moved; rebuild them "
            "on an idle machine (delete the table, or build to another --out)")
    return table
