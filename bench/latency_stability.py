"""Does a network's measured latency survive what the process timed before it?  (Issue 21.)

    python bench/latency_stability.py --out bench/latency/stability

The latency benchmark timed the same seven canonical networks twice in one process, once
during the table's build and once in its test; in PyTorch eager their medians moved by
up to 23% between the two (ONNX Runtime: under 5%), more than the +-10% a prediction is
asked to meet.  This benchmark asks why: in a fresh process per runtime and allocator
setting, it times the canonical networks (phase 1), then ``--blocks`` blocks and
``--others`` whole networks of other sizes drawn from the default space (what a table's
build times between two measurements), then the canonical networks again (phase 3), and
prints each network's phase-3 / phase-1 ratio.

Allocator settings (glibc malloc, set through ``mallopt`` in the timing process):
``default`` leaves glibc's dynamic thresholds (a freed large buffer raises the size
below which later buffers come from the heap, and a heap top over the trim threshold is
handed back to the system: what a call allocates depends on what ran before it);
``steady`` fixes them (mbnas.latency.measure.steady_allocator), as a long-running
inference process settles into.  1 thread, pinned, batch 1, 224 px; nothing else may run.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SETTINGS = ("default", "steady")


def one(runtime: str, setting: str, blocks: int, others: int) -> dict:
    from bench.latency_accuracy import canonical, members
    from mbnas.latency.measure import Timer, parts, steady_allocator

    if setting == "steady":
        steady_allocator()
    timer = Timer(runtime, 1, steady=False)
    named = dict(canonical())
    first = timer.time_networks(named, 1)
    drawn = members(others, 7, set())
    todo = {}
    for arch in drawn:
        for part in parts(arch, 1):
            if len(todo) < blocks:
                todo.setdefault(part.key, (part.module, part.shape))
    timer.time_all(todo)
    timer.time_networks({f"other {i}": a for i, a in enumerate(drawn)}, 1)
    again = timer.time_networks(named, 1)
    return {name: {"phase1_ms": first[name].median_ms, "phase3_ms": again[name].median_ms,
                   "phase1_iqr": round(first[name].spread, 3),
                   "phase3_iqr": round(again[name].spread, 3)} for name in named}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="bench/latency/stability")
    p.add_argument("--runtimes", default="torch,onnxruntime")
    p.add_argument("--settings", default=",".join(SETTINGS),
                   help=f"allocator settings, from {', '.join(SETTINGS)} (default both)")
    p.add_argument("--blocks", type=int, default=60)
    p.add_argument("--others", type=int, default=10)
    p.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    out = Path(args.out)
    if args.one:
        runtime, setting = args.one
        rows = one(runtime, setting, args.blocks, args.others)
        (out / f"{runtime}-{setting}.json").write_text(json.dumps(rows, indent=1) + "\n")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    (out / "COMMAND").write_text("python " + shlex.join(["bench/latency_stability.py",
                                                         *sys.argv[1:]]) + "\n")
    print("| runtime | allocator | network | phase 1 ms | phase 3 ms | ratio |")
    print("|---|---|---|---|---|---|")
    summary = []
    for runtime in args.runtimes.split(","):
        for setting in args.settings.split(","):
            subprocess.run([sys.executable, __file__, "--one", runtime, setting, "--out",
                            str(out), "--blocks", str(args.blocks), "--others",
                            str(args.others)], check=True)  # a fresh process each
            rows = json.loads((out / f"{runtime}-{setting}.json").read_text())
            ratios = []
            for name, r in rows.items():
                ratio = r["phase3_ms"] / r["phase1_ms"]
                ratios.append(abs(ratio - 1))
                print(f"| {runtime} | {setting} | {name} | {r['phase1_ms']:.2f} "
                      f"| {r['phase3_ms']:.2f} | {ratio:.3f} |", flush=True)
            summary.append(f"{runtime} {setting}: phase 3 vs phase 1 moved by "
                           f"{100 * statistics.median(ratios):.1f}% (median), "
                           f"{100 * max(ratios):.1f}% (most)")
    print()
    print("\n".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
