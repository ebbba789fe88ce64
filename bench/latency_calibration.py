"""Would another calibration, or a bigger build, predict unseen networks better?  Read
off the accuracy bench's runs (issue 21).

    python bench/latency_calibration.py bench/latency/{calm,calm2,calm3,default,retest}
    python bench/latency_calibration.py bench/latency/{epyc,epyc2,calm-epyc,rounds20,rounds20-2}

Each folder is a run of ``bench/latency_accuracy.py``: its tables
(``{runtime}.table.json``) and the networks its test timed (``{runtime}.csv``).  Two
questions, both answered from what those runs measured; nothing is timed here.

1. **Calibrations.**  A table maps a network's sum of parts to its end-to-end time by a
   calibration fitted to the build's networks (:class:`mbnas.latency.table.Calibration`):
   a scale, an offset, and ms per input element and per weight of each part, of which the
   shipped code fits two sets (scale and offset; all four) and keeps the one that
   predicts each build network better with it left out.  Each set of terms is fitted
   alone here and scored twice: on the build's networks, each predicted as
   :class:`mbnas.latency.table.Holdout` predicts it (out of the calibration, its own
   blocks predicted by the fit), and on the test's random members, as the bench
   predicted them.
2. **A bigger build.**  Each table cut down to 12, 20 and 28 of its build networks
   (three random choices each: only the blocks those networks have, only they
   calibrate), predicting the same test members: how the error falls as the build grows.
3. **Where the misses are.**  Each run's test members under :data:`SMALL_MS` and over
   it, as the shipped code predicted them, beside the calibration's offset.

Prints, per runtime, each variant's figures averaged over the folders given.
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mbnas.arch.encoding import decode  # noqa: E402
from mbnas.errors import MbnasError  # noqa: E402
from mbnas.latency.table import (  # noqa: E402
    CALL,
    Table,
    _edges,
    _left_out_error,
    _solve,
    keys,
    load_table,
)

RUNTIMES = ("onnxruntime", "torch")
# Columns of a calibration row: sum of parts, input elements, weights, 1 (the offset).
VARIANTS = {
    "scale": (0,),
    "scale and offset": (0, 3),
    "scale, offset, input elements": (0, 1, 3),
    "scale, offset, weights": (0, 2, 3),
    "scale and both edges, no offset": (0, 1, 2),
    "all four": (0, 1, 2, 3),
    "shipped: the better of the two, left out": None,
}
SHIPPED_CHOICES = ((0, 3), (0, 1, 2, 3))
SIZES = (12, 20, 28)
SMALL_MS = 5.0
DRAWS = 3


def row(table: Table, text_or_arch) -> list[float]:
    """A network's calibration row, before its measured ms."""
    arch = decode(text_or_arch) if isinstance(text_or_arch, str) else text_or_arch
    parts = table._parts(arch)
    return [sum(p.ms for p in parts), *_edges(parts), 1.0]


def predict(rows: np.ndarray, columns, x: list[float]) -> float:
    """``x``'s ms by the calibration ``columns`` fitted to ``rows`` (None: the shipped
    choice)."""
    if columns is None:
        columns = min(SHIPPED_CHOICES, key=lambda c: _left_out_error(rows, c))
    return float(np.array(x)[list(columns)] @ _solve(rows, columns))


def tested(folder: Path, runtime: str, statistic: str) -> list[tuple[str, float]]:
    """The random members the run's test timed: encoding and measured ms."""
    field = "q1_ms" if statistic == "q1" else "measured_ms"
    with open(folder / f"{runtime}.csv") as f:
        return [(r["arch"], float(r[field])) for r in csv.DictReader(f)
                if r["set"] != "canonical"]


def score(errors) -> tuple[float, float]:
    size = [abs(e) for e in errors]
    return statistics.median(size), sum(e <= 0.10 for e in size) / len(size)


def calibrations(table: Table, tests: list[tuple[str, float]]) -> dict[str, tuple]:
    """Each variant's (held-out median, within 10%, test median, within 10%)."""
    stat = table.meta.statistic
    nets = list(table.networks)
    full = np.array([row(table, n) + [table.networks[n].ms(stat)] for n in nets])
    needs = {n: {k for _, k in keys(decode(n))} for n in nets}
    used = Counter(k for ks in needs.values() for k in ks)
    folds = {}
    for i, n in enumerate(nets):
        own = {k for k in needs[n] if used[k] == 1}
        fold = Table(table.meta, {k: e for k, e in table.entries.items() if k not in own})
        try:
            folds[i] = row(fold, n) + [table.networks[n].ms(stat)]
        except MbnasError:  # its own blocks are beyond the others' fit
            continue
    test_rows = [row(table, a) + [ms] for a, ms in tests]
    out = {}
    for name, columns in VARIANTS.items():
        held = [predict(np.delete(full, i, axis=0), columns, x) / x[-1] - 1
                for i, x in folds.items()]
        test = [predict(full, columns, x) / x[-1] - 1 for x in test_rows]
        out[name] = (*score(held), *score(test))
    return out


def curve(table: Table, tests: list[tuple[str, float]]) -> dict[str, tuple]:
    """The test members' (median, within 10%, entries) with the build cut to each of
    :data:`SIZES` networks (averaged over :data:`DRAWS` choices), and whole."""
    nets = list(table.networks)
    archs = [(decode(a), ms) for a, ms in tests]
    out = {}
    for m in (*SIZES, len(nets)):
        if m > len(nets):
            continue
        got = []
        for draw in range(DRAWS if m < len(nets) else 1):
            keep = random.Random(100 * draw + m).sample(nets, m)
            need = {k for n in keep for _, k in keys(decode(n))} | {CALL}
            cut = Table(table.meta, {k: e for k, e in table.entries.items() if k in need},
                        networks={n: table.networks[n] for n in keep})
            try:
                errors = [cut.predict(a) / ms - 1 for a, ms in archs]
            except MbnasError:  # a test member the cut table cannot price
                continue
            got.append((*score(errors), len(cut.entries)))
        if got:
            label = "all" if m == len(nets) else str(m)
            out[label] = tuple(float(np.mean(v)) for v in zip(*got, strict=True))
    return out


def by_size(table: Table, tests: list[tuple[str, float]]) -> str:
    """A row: the test members under and over :data:`SMALL_MS`, and the calibration."""
    cells = []
    for small in (True, False):
        errors = [table.predict(decode(a)) / ms - 1 for a, ms in tests
                  if (ms < SMALL_MS) == small]
        if not errors:
            cells.append("none")
            continue
        median, within = score(errors)
        cells.append(f"{len(errors)}: {100 * median:.1f}%, {100 * within:.0f}% "
                     f"(signed {100 * statistics.median(errors):+.1f}%)")
    return " | ".join(cells) + f" | {table.calibration().describe()} |"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="+", type=Path)
    args = p.parse_args()
    runs = [f for f in args.folders if any((f / f"{r}.table.json").exists()
                                           and (f / f"{r}.csv").exists() for r in RUNTIMES)]
    if not runs:
        print("latency_calibration: none of the folders given holds a run of "
              "bench/latency_accuracy.py (a {runtime}.table.json beside its {runtime}.csv, "
              f"runtime one of {', '.join(RUNTIMES)})", file=sys.stderr)
        return 2
    for runtime in RUNTIMES:
        cal, cur, seen, sizes = {}, {}, [], []
        for folder in runs:
            path = folder / f"{runtime}.table.json"
            if not path.exists() or not (folder / f"{runtime}.csv").exists():
                continue
            table = load_table(path)
            tests = tested(folder, runtime, table.meta.statistic)
            for name, v in calibrations(table, tests).items():
                cal.setdefault(name, []).append(v)
            for name, v in curve(table, tests).items():
                cur.setdefault(name, []).append(v)
            sizes.append(f"| {folder.name} | {by_size(table, tests)}")
            seen.append(folder.name)
            print(f"[{runtime}] {folder}: read", file=sys.stderr, flush=True)
        if not seen:
            continue
        print(f"\n{runtime}, {len(seen)} runs ({', '.join(seen)}), averaged over them:\n")
        print("| calibration | build networks held out: median error, within ±10% | "
              "test members: median error, within ±10% |")
        print("|---|---|---|")
        for name, vs in cal.items():
            h, h10, t, t10 = np.mean(vs, axis=0)
            print(f"| {name} | {100 * h:.2f}%, {100 * h10:.0f}% | {100 * t:.2f}%, "
                  f"{100 * t10:.0f}% |")
        print("\n| build networks kept | entries | test members: median error, within "
              "±10% | runs |")
        print("|---|---|---|---|")
        for name, vs in cur.items():
            med, w10, entries = np.mean(vs, axis=0)
            print(f"| {name} | {entries:.0f} | {100 * med:.2f}%, {100 * w10:.0f}% | "
                  f"{len(vs)} |")
        print(f"\n| run | test members under {SMALL_MS:g} ms: median error, within ±10% | "
              f"{SMALL_MS:g} ms and over | the shipped calibration |")
        print("|---|---|---|---|")
        print("\n".join(sizes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
