"""Which fit and which statistic?  Each build network predicted with its own blocks left
out (issue 21).

    python bench/latency_fit.py bench/latency/default/onnxruntime.table.json ...

For each table given, and for each statistic (the median of a part's rounds and their
lower quartile), every network the build timed end to end is predicted as an unseen
network is: the blocks no other build network has are dropped from the fit, the fit and
the calibration are refitted on the rest, and the network's sum of parts is compared with
its own end-to-end time.  Three models: the first (a single elements term, no term per
kind of block), and the shipped fit (:mod:`mbnas.latency.fit`), each calibrated by a scale
and an offset as the first tables were; and the shipped code itself (``Table.predict``
on a table without the network: its fit, and the calibration it chooses, with or without
each part's edges, :class:`mbnas.latency.table.Calibration`).  Prints the networks' median
error and share within +-10%, and the left-out blocks' median error.  Measures nothing:
it reads the tables.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mbnas.arch.encoding import decode  # noqa: E402
from mbnas.latency import fit as shipped  # noqa: E402
from mbnas.latency.table import CALL, Table, keys, load_table  # noqa: E402


def first_features(key: str) -> dict[str, float] | None:
    """The first model's terms: one elements term, no split by map size or kind."""
    row = shipped.features(key)
    if row is None:
        return None
    out = {k: v for k, v in row.items()
           if not k.startswith(("elements_", "ops_"))}
    out["elements"] = sum(v for k, v in row.items() if k.startswith("elements_"))
    return out


def fitted(measured: dict[str, float], features, table: Table) -> callable:
    """The shipped fit (:func:`mbnas.latency.fit.fit`, with the table's blocked terms and
    the channel padding it reads off them) for ``features=None``; else non-negative least
    squares on relative error, as it fits, of ``features``."""
    if features is None:
        return shipped.fit(measured, blocked=table.blocked).predict
    rows = {k: features(k) for k, ms in measured.items() if ms > 0}
    rows = {k: r for k, r in rows.items() if r is not None}
    terms = sorted({n for r in rows.values() for n, v in r.items() if v})
    a = np.array([[rows[k].get(t, 0.0) for t in terms] for k in rows])
    b = np.array([measured[k] for k in rows])
    scale = a.max(axis=0)
    x = shipped.nnls((a / scale) / b[:, None], np.ones(len(b))) / scale
    coefficients = dict(zip(terms, x, strict=True))
    return lambda key: sum(v * coefficients.get(n, 0.0) for n, v in features(key).items())


def left_out(table: Table, features) -> tuple[list[float], list[float]]:
    """(each build network's relative error, each left-out block's) with its own blocks
    left out of the fit, the sum of parts calibrated by a scale and an offset."""
    share = table._call_share()
    call = table.ms(CALL)
    measured = {k: table.ms(k) - share for k in table.entries if k != CALL}
    needs = own_blocks(table)
    nets, blocks = [], []
    for text, entry in table.networks.items():
        own = needs[text]
        rest = {k: v for k, v in measured.items() if k not in own}
        predict = fitted(rest, features, table)
        blocks += [abs(predict(k) / measured[k] - 1) for k in own if measured[k] > 0]

        def raw(t, rest=rest, predict=predict):
            return call + sum(rest[k] if k in rest else predict(k)
                              for _, k in keys(decode(t)))
        pairs = np.array([(raw(t), e.ms(table.meta.statistic))
                          for t, e in table.networks.items() if t != text])
        r, m = pairs.T
        scale, offset = np.linalg.lstsq(np.stack([r / m, 1 / m], 1), np.ones(len(r)),
                                        rcond=None)[0]
        nets.append(abs((scale * raw(text) + offset) / entry.ms(table.meta.statistic) - 1))
    return nets, blocks


def own_blocks(table: Table) -> dict[str, set[str]]:
    """Each build network's blocks that no other build network has."""
    needs = {text: {k for _, k in keys(decode(text))} for text in table.networks}
    used = Counter(k for ks in needs.values() for k in ks)
    return {text: {k for k in ks if used[k] == 1} for text, ks in needs.items()}


def left_out_shipped(table: Table) -> list[float]:
    """Each build network's relative error, predicted by the shipped code from a table
    without its own blocks and without it among the networks that calibrate (what a
    table reports of itself: :class:`mbnas.latency.table.Holdout`)."""
    return [abs(e) for e in table.held_out_errors().values()]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("tables", nargs="+")
    args = p.parse_args()
    print("| table | statistic | model | build networks left out: median error, within "
          "±10% | left-out blocks: median error |")
    print("|---|---|---|---|---|")
    for path in args.tables:
        base = load_table(path)
        for statistic in ("median", "q1"):
            table = replace(base, meta=replace(base.meta, statistic=statistic))
            rows = [(f"{name} fit, scale and offset", *left_out(table, features))
                    for name, features in (("first", first_features),
                                           ("shipped", None))]
            rows.append(("shipped fit and calibration (edges)", left_out_shipped(table),
                         rows[-1][2]))
            for name, nets, blocks in rows:
                print(f"| {path} | {statistic} | {name} | {100 * statistics.median(nets):.1f}%, "
                      f"{100 * sum(e <= 0.10 for e in nets) / len(nets):.0f}% of {len(nets)} "
                      f"| {100 * statistics.median(blocks):.1f}% of {len(blocks)} |",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
