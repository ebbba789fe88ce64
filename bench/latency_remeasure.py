"""A latency-budgeted search's confirmed networks, timed side by side (issue 21).

    python bench/latency_remeasure.py runs/search-v3l-40 \
        --table bench/latency/calm2/onnxruntime.table.json --out runs/search-v3l-40/remeasured.md

A search times its winner once, right after the trainings, on a machine that may have
moved since the table was built.  This times every network the search confirmed (the
winner and the rivals scaled to the budget) and a reference (MobileNetV3-Large x1.0 by
default) in one process, in the table's runtime and thread count, interleaved rounds
(``Timer.time_networks``), ``--times`` times over; then prints, per network, its MACs,
the table's prediction, each timing (the statistic the table holds: the lower quartile of
the rounds' medians, or the median) and its ratio to the reference in the same timing.  On
a shared machine the absolute figures move between timings; the ratios are what to read.
Nothing else may run meanwhile.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mbnas.arch.cost import count  # noqa: E402
from mbnas.arch.encoding import decode  # noqa: E402
from mbnas.arch.seeds import parse_arch  # noqa: E402
from mbnas.latency.measure import Timer  # noqa: E402
from mbnas.latency.table import load_table  # noqa: E402


def networks(run: Path, reference: str, resolution: int) -> dict[str, object]:
    """label -> Arch: the run's confirmed networks, then the reference."""
    best = json.loads((run / "best.json").read_text())
    rows = (best.get("confirmation") or {}).get("rows") or []
    if not rows:
        sys.exit(f"{run / 'best.json'}: no confirmed networks to time")
    nets = {r["label"]: decode(r["arch"]) for r in rows}
    nets[f"{reference} x1.0 (reference)"] = parse_arch(reference, resolution=resolution)
    return nets


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="a search's run folder (its best.json)")
    p.add_argument("--table", required=True, help="the latency table the search priced by")
    p.add_argument("--reference", default="mobilenet_v3_large")
    p.add_argument("--rounds", type=int, default=None,
                   help="interleaved rounds per timing (default: the table's protocol)")
    p.add_argument("--times", type=int, default=2, help="timings, one after the other")
    p.add_argument("--out", type=Path, help="also write the table (markdown) here")
    args = p.parse_args()
    table = load_table(args.table)
    meta = table.meta
    nets = networks(args.run, args.reference, meta.resolution)
    timer = Timer.like(meta)
    args.rounds = args.rounds or meta.rounds
    ref = list(nets)[-1]
    timings = []
    for i in range(args.times):
        start = time.perf_counter()
        entries = timer.time_networks(nets, meta.batch, rounds=args.rounds)
        timings.append({k: e.ms(meta.statistic) for k, e in entries.items()})
        print(f"timing {i + 1}/{args.times}: {time.perf_counter() - start:.0f} s",
              file=sys.stderr)
    head = ["network", "MACs", "predicted ms", "predicted vs reference",
            "measured ms, " + " / ".join(f"#{i + 1}" for i in range(args.times)),
            "measured vs reference, " + " / ".join(f"#{i + 1}" for i in range(args.times))]
    predicted = {k: table.predict(a) for k, a in nets.items()}
    lines = [f"`python bench/latency_remeasure.py {shlex.join(sys.argv[1:])}`: "
             f"{meta.runtime} {meta.runtime_version}, {meta.threads} thread(s) pinned, batch "
             f"{meta.batch}, {meta.resolution} px, {args.rounds} interleaved rounds, "
             f"{args.times} timings (the {meta.statistic} of the rounds' medians); "
             f"{time.strftime('%Y-%m-%d %H:%M')}", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for k, arch in nets.items():
        ms = [t[k] for t in timings]
        ratios = [t[k] / t[ref] for t in timings]
        lines.append("| " + " | ".join([
            k, f"{count(arch).macs / 1e6:.1f}M", f"{predicted[k]:.2f}",
            f"{predicted[k] / predicted[ref]:.2f}x",
            " / ".join(f"{m:.2f}" for m in ms),
            " / ".join(f"{r:.2f}x" for r in ratios)]) + " |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
