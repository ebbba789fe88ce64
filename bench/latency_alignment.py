"""Does a block's channel count change its latency beyond its size?  (Issue 21: the V1
rival that a latency-budgeted search scaled to 5.22 ms ran in 11.35 ms.)

    python bench/latency_alignment.py --out bench/latency/alignment
    python bench/latency_alignment.py --out bench/latency/alignment --report-only

MobileNetV1 truncates its scaled channels (tf-slim's ``int(channels * width)``), so
most widths give odd channel counts (x0.718: 45, 91, 183, 367, 735), where V2's and
V3's rule keeps multiples of 8.  For each runtime (each in a fresh process), at 1
thread pinned, batch 1: depthwise-separable blocks whose channel count steps by one
around a multiple of 8, at 14 and 56 px, and V1 end to end at widths whose channels
are aligned to different degrees.  Each is timed as ``mbnas latency build`` times a
part (interleaved rounds); the report gives each block's ms per million MACs against
its multiple-of-8 neighbour's, so a ratio near 1 means the channel count costs only
its size.  Nothing else may run on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mbnas.arch.kinds import Block, kind  # noqa: E402
from mbnas.latency.table import RUNTIMES  # noqa: E402

# (map size, channel counts): a multiple of 8 first, then its neighbours.
BLOCKS = ((14, (368, 367, 366, 364, 372, 376)), (56, (88, 87, 86, 84, 92, 96)))
V1_WIDTHS = (0.718, 0.72, 0.75, 0.7143)


def block(channels: int, size: int) -> Block:
    return Block("b", "ds", channels, channels, channels, 3, 1, "relu", False, 0, size)


def one(runtime: str, rounds: int) -> list[dict]:
    from mbnas.arch.cost import count
    from mbnas.arch.seeds import parse_arch
    from mbnas.latency.measure import Timer
    from mbnas.nn.network import build

    timer = Timer(runtime, 1)
    items, about = {}, {}
    for size, counts in BLOCKS:
        for c in counts:
            b = block(c, size)
            key = f"ds c{c} {size}px"
            items[key] = (kind("ds").module(b).eval(), (1, c, size, size))
            macs = sum(conv.weights * conv.out_size ** 2 for conv in kind("ds").convs(b))
            about[key] = {"what": "block", "channels": c, "size": size, "macs": macs}
    for w in V1_WIDTHS:
        arch = parse_arch("mobilenet_v1", width=w, resolution=224, num_classes=1000)
        key = f"mobilenet_v1 x{w}"
        items[key] = (build(arch), (1, 3, 224, 224))
        about[key] = {"what": "network", "width": w, "macs": count(arch).macs}
    entries = timer.time_all(items, rounds=rounds)
    return [{"runtime": runtime, "name": k, **about[k], "q1_ms": e.q1_ms,
             "median_ms": e.median_ms, "q3_ms": e.q3_ms} for k, e in entries.items()]


def report(rows: list[dict], rounds: int) -> None:
    """Each part's ms, and its ms per MAC against its reference's: the multiple of 8 for
    a block, V1 x0.72 for a network."""
    def line(name: str, r: dict, reference: dict, note: str = "") -> str:
        ratio = (r["q1_ms"] / r["macs"]) / (reference["q1_ms"] / reference["macs"])
        return (f"| {name} | {r['macs'] / 1e6:.2f}M | {r['q1_ms']:.3f} | "
                f"{ratio:.2f}{note} |")

    for runtime in ("onnxruntime", "torch"):
        mine = {r["name"]: r for r in rows if r["runtime"] == runtime}
        print(f"\n{runtime}, 1 thread, lower quartile of {rounds} rounds")
        print("| part | MACs | ms | ms per MAC against the reference |")
        print("|---|---|---|---|")
        for size, counts in BLOCKS:
            reference = mine[f"ds c{counts[0]} {size}px"]
            for c in counts:
                print(line(f"ds {c} ch, {size} px", mine[f"ds c{c} {size}px"], reference))
        reference = mine[f"mobilenet_v1 x{V1_WIDTHS[1]}"]
        for w in V1_WIDTHS:
            print(line(f"mobilenet_v1 x{w}", mine[f"mobilenet_v1 x{w}"], reference,
                       f" (against x{V1_WIDTHS[1]})"))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="bench/latency/alignment")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--runtime", choices=RUNTIMES, help=argparse.SUPPRESS)  # one, in-process
    p.add_argument("--report-only", action="store_true",
                   help="print the report of the rows saved in --out, measuring nothing")
    args = p.parse_args()
    if args.report_only:
        report(json.loads((Path(args.out) / "alignment.json").read_text()), args.rounds)
        return 0
    if args.runtime:
        print(json.dumps(one(args.runtime, args.rounds)))
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for runtime in ("onnxruntime", "torch"):
        done = subprocess.run([sys.executable, __file__, "--runtime", runtime,
                               "--rounds", str(args.rounds)],
                              check=True, capture_output=True, text=True)
        rows += json.loads(done.stdout)
    (out / "alignment.json").write_text(json.dumps(rows, indent=1) + "\n")
    (out / "COMMAND").write_text(
        "python bench/latency_alignment.py " + shlex.join(sys.argv[1:]) + "\n")
    report(rows, args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
