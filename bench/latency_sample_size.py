"""How much does a latency table gain from more members to build from?  (Issue 21.)

    python bench/latency_sample_size.py bench/latency/chunk-2
    python bench/latency_sample_size.py bench/latency/chunk-2 --runtime torch --sizes 30,15

Measures nothing: it reads a ``bench/latency_accuracy.py`` run's table and timings, and
predicts that run's 50 unseen members again from the table cut down to some of its random
build members (the canonical networks and the probe stay): only those members' blocks and
end-to-end timings are kept, so the fit and the calibration see what a table built from
that many members would have seen, timed at the same moments.  Each size is drawn
``--draws`` times (seeded); the full table is the first row.  Prints, per size, the
median absolute error of the unseen members against their first timing and the share
within +-10%, per draw, and the same with the shift every network shares between build
and test taken out (the median ratio of prediction to measurement).
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mbnas.arch.encoding import decode, encode  # noqa: E402
from mbnas.errors import MbnasError  # noqa: E402
from mbnas.latency.build import probes  # noqa: E402
from mbnas.latency.table import CALL, Table, keys, load_table  # noqa: E402


def score(table: Table, kept: list[str], rows: list[dict]) -> tuple[float, ...]:
    """The unseen ``rows`` predicted from ``table`` cut down to the networks ``kept``:
    median absolute error, share within +-10%, the same two with the shift every network
    shares taken out (the median ratio of prediction to measurement: what a machine whose
    speed moved between build and test adds), and the parts kept."""
    need = {CALL} | {k for text in kept for _, k in keys(decode(text))}
    cut = Table(table.meta, {k: e for k, e in table.entries.items() if k in need},
                networks={t: table.networks[t] for t in kept})
    ratios = []
    for r in rows:
        try:
            predicted = cut.predict(decode(r["arch"]))
        except MbnasError:  # a block beyond the cut table's fit: counted as a miss
            ratios.append(float("inf"))
            continue
        ratios.append(predicted / float(r["q1_ms"] or r["measured_ms"]))
    shared = statistics.median(ratios)

    def figures(errors: list[float]) -> tuple[float, float]:
        return statistics.median(errors), sum(e <= 0.10 for e in errors) / len(errors)
    return (*figures([abs(x - 1) for x in ratios]),
            *figures([abs(x / shared - 1) for x in ratios]), len(need))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="a bench/latency_accuracy.py --out folder")
    p.add_argument("--runtime", default="onnxruntime", choices=("onnxruntime", "torch"))
    p.add_argument("--sizes", default="23,15,8", help="build members kept (default 23,15,8)")
    p.add_argument("--draws", type=int, default=4, help="draws per size (default 4)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
        table = load_table(args.run / f"{args.runtime}.table.json")
        with (args.run / f"{args.runtime}.csv").open() as f:
            rows = list(csv.DictReader(f))
    except (ValueError, OSError, MbnasError) as e:
        print(f"latency_sample_size: {e}", file=sys.stderr)
        return 2
    canonical = {r["arch"] for r in rows if r["set"] == "canonical"}
    unseen = [r for r in rows if r["set"] == "random"]
    probed = {encode(a) for a in probes(resolution=table.meta.resolution, num_classes=1000)}
    fixed = [t for t in table.networks if t in canonical | probed]
    members = [t for t in table.networks if t not in fixed]
    if any(not 0 < s <= len(members) for s in sizes):
        print(f"latency_sample_size: --sizes must lie in 1..{len(members)}, the run's "
              "random build members", file=sys.stderr)
        return 2
    print(f"{args.run} ({args.runtime}): {len(members)} random build members, "
          f"{len(fixed)} canonical networks and probes kept in every cut; "
          f"{len(unseen)} unseen members predicted")
    rng = random.Random(args.seed)
    for size in [len(members), *sizes]:
        draws = 1 if size == len(members) else args.draws
        figures = [score(table, fixed + rng.sample(members, size), unseen)
                   for _ in range(draws)]
        print(f"{size:3d} members: " + "; ".join(
            f"{100 * m:.1f}%, {100 * w:.0f}% within ±10% (shared shift out: {100 * ms:.1f}%, "
            f"{100 * ws:.0f}%; {n} parts)" for m, w, ms, ws, n in figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
