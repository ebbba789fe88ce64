"""Which timing protocol gives a network's end-to-end latency that repeats best?  (Issue 21.)

    python bench/latency_protocol.py --out bench/latency/protocol

Tables up to 2026-12-03 timed every part and network in 5 interleaved rounds of at least
20 calls, and held the lower quartile of the rounds' medians.  On a shared machine whose
speed moves in spells of seconds (bench/machine_noise.py), the same networks timed twice
minutes apart came out 4.6-8.7% apart (the accuracy bench's "timed twice"): a floor under
every prediction error.  This asks whether the same number of calls, cut into more and
shorter rounds, or summarised by another statistic, repeats better.

For each runtime, in a fresh process, 1 thread pinned, batch 1, 224 px: the canonical
networks and ``--members`` members of the default space (draw seed 11, none of them used
by any table) are timed under each protocol (rounds x calls per round, the same calls in
all) in the order A B C ... A B C ..., ``--repetitions`` times over, so that each
protocol's two timings of a network are the same distance apart.  One protocol times its
second timing on a fresh instance of every network (a new session or module, as a retest
or a deployment runs): how much of a retest's distance is the instance's, not the
moment's.  Each timing keeps every round's median; the statistics are computed from them:
the lower quartile (what tables hold), the median, and the fastest round.  Printed per
runtime, protocol and statistic: how far a network's two timings are apart (median over
networks and repetitions), the share within +-5% and +-10%, and that distance split in
two: the shift every network of a timing shared (the machine's speed; the median ratio of
the second timing to the first, per repetition) and what is left of each network's ratio
around it (median).  A prediction can be calibrated past the first, never the second.
Nothing else may run on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# (rounds, calls per round, whether the second timing runs on a fresh instance of each
# network: a new ONNX Runtime session, or a new eager module, as a retest or a deployment
# gets; the other protocols time one instance twice)
PROTOCOLS = ((5, 20, False), (10, 10, False), (20, 5, False), (5, 20, True))
STATS = ("q1", "median", "min")


def stat(name: str, medians: list[float]) -> float:
    if name == "min":
        return min(medians)
    if name == "median":
        return statistics.median(medians)
    return statistics.quantiles(medians, n=4, method="inclusive")[0]


def round_medians(calls: dict, rounds: int, repeats: int, warmup: int) -> dict[str, list]:
    """Every call timed in ``rounds`` interleaved rounds of ``repeats`` calls by
    mbnas.latency.measure.timed_rounds: each round's median, per call (the rounds it
    keeps as they end)."""
    from mbnas.latency.measure import Rounds, timed_rounds

    state = Rounds.start(calls)
    timed_rounds(calls, rounds=rounds, warmup=warmup, repeats=repeats, resume=state)
    return state.medians


def parse_protocols(text: str) -> tuple[tuple[int, int, bool], ...]:
    """``5x20,20x5,5x20+fresh`` -> PROTOCOLS' form."""
    out = []
    for item in text.split(","):
        shape, _, fresh = item.partition("+")
        rounds, repeats = (int(n) for n in shape.split("x"))
        out.append((rounds, repeats, fresh == "fresh"))
    return tuple(out)


def one(runtime: str, members_: int, repetitions: int,
        protocols: tuple[tuple[int, int, bool], ...] = PROTOCOLS) -> dict:
    from bench.latency_accuracy import BATCH, RESOLUTION, canonical, members
    from mbnas.latency.measure import Timer, pinned
    from mbnas.nn.network import build

    timer = Timer(runtime, 1)
    nets = dict(canonical() + [(f"member {j}", a)
                               for j, a in enumerate(members(members_, 11, set()))])
    def instances() -> dict:
        return {key: timer.prepare(build(a), (BATCH, 3, RESOLUTION, RESOLUTION))
                for key, a in nets.items()}

    calls = instances()
    timings: list[dict] = []
    with pinned(1):
        for rep in range(repetitions):
            for time_ in (1, 2):
                for rounds, repeats, fresh in protocols:
                    start = time.monotonic()
                    medians = round_medians(instances() if fresh and time_ == 2 else calls,
                                            rounds, repeats, timer.warmup)
                    timings.append({"repetition": rep, "time": time_, "rounds": rounds,
                                    "repeats": repeats, "fresh": fresh, "medians": medians,
                                    "seconds": round(time.monotonic() - start, 1)})
                    print(f"[{time.strftime('%H:%M:%S')}] {runtime}: repetition {rep + 1}, "
                          f"timing {time_}, {rounds} x {repeats}{', fresh' if fresh else ''}"
                          f" in {timings[-1]['seconds']} s", file=sys.stderr, flush=True)
    return {"runtime": runtime, "networks": list(nets), "timings": timings}


def report(data: dict) -> list[str]:
    lines = []
    for rounds, repeats, fresh in PROTOCOLS:
        runs = [t for t in data["timings"]
                if (t["rounds"], t["repeats"], t.get("fresh", False)) == (rounds, repeats, fresh)]
        if not runs:
            continue
        for name in STATS:
            apart, shifts, left = [], [], []
            for rep in sorted({t["repetition"] for t in runs}):
                a, b = (next(t for t in runs if t["repetition"] == rep and t["time"] == k)
                        for k in (1, 2))
                ratios = [stat(name, b["medians"][net]) / stat(name, a["medians"][net])
                          for net in data["networks"]]
                shift = statistics.median(ratios)
                shifts.append(shift)
                apart += [abs(r - 1) for r in ratios]
                left += [abs(r / shift - 1) for r in ratios]
            label = f"{rounds} x {repeats}{', fresh instance' if fresh else ''}"
            lines.append(f"| {data['runtime']} | {label} | {name} "
                         f"| {100 * statistics.median(apart):.1f}% "
                         f"| {100 * sum(x <= 0.05 for x in apart) / len(apart):.0f}% "
                         f"| {100 * sum(x <= 0.10 for x in apart) / len(apart):.0f}% "
                         f"| {' / '.join(f'{100 * (m - 1):+.1f}%' for m in shifts)} "
                         f"| {100 * statistics.median(left):.1f}% | {len(apart)} |")
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="bench/latency/protocol")
    p.add_argument("--runtimes", default="onnxruntime,torch")
    p.add_argument("--members", type=int, default=13)
    p.add_argument("--repetitions", type=int, default=3)
    p.add_argument("--protocols", default=",".join(
        f"{r}x{c}{'+fresh' if f else ''}" for r, c, f in PROTOCOLS),
        help="rounds x calls per round, '+fresh' for a fresh instance in the second "
             "timing (default: %(default)s)")
    p.add_argument("--report-only", action="store_true",
                   help="print the report from the saved timings")
    p.add_argument("--one", help=argparse.SUPPRESS)
    args = p.parse_args()
    out = Path(args.out)
    if args.one:
        data = one(args.one, args.members, args.repetitions, parse_protocols(args.protocols))
        (out / f"{args.one}.json").write_text(json.dumps(data) + "\n")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        (out / "COMMAND").write_text("python " + shlex.join(["bench/latency_protocol.py",
                                                             *sys.argv[1:]]) + "\n")
    lines = ["| runtime | rounds x calls | statistic | timed twice: apart by (median) "
             "| within 5% | within 10% | shared shift, per repetition | left around it "
             "| pairs |", "|---|---|---|---|---|---|---|---|---|"]
    for runtime in args.runtimes.split(","):
        if not args.report_only:
            subprocess.run([sys.executable, __file__, "--one", runtime, "--out", str(out),
                            "--members", str(args.members), "--repetitions",
                            str(args.repetitions), "--protocols", args.protocols],
                           check=True)  # a fresh process each
        lines += report(json.loads((out / f"{runtime}.json").read_text()))
    print("\n".join(lines))
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
