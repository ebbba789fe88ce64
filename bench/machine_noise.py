"""How still is this machine?  One network timed over and over for ``--seconds``, the
median of each ``--window`` printed, with the CPU time the hypervisor stole meanwhile.

    python bench/machine_noise.py --out bench/latency/noise

A latency table is only as good as the machine is still while it is built and while it is
checked: when the same network's median moves by more than 10% from one window to the
next, no prediction can be checked to +-10%.  MobileNetV2 in PyTorch eager, 1 thread
pinned to the first core, batch 1, 224 px (the allocator fixed, as a table's timer runs).
Nothing else may run on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def steal_jiffies() -> int:
    """The CPU time stolen by the hypervisor so far (/proc/stat), 0 where unknown."""
    try:
        with open("/proc/stat", encoding="utf-8") as f:
            fields = f.readline().split()
        return int(fields[8])
    except (OSError, IndexError, ValueError):
        return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="bench/latency/noise")
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--window", type=float, default=2)
    args = p.parse_args()
    import torch

    from mbnas.arch.seeds import seed
    from mbnas.latency.measure import pinned, steady_allocator
    from mbnas.nn.network import build

    steady_allocator()
    torch.set_num_threads(1)
    net = build(seed("mobilenet_v2")).eval().to(memory_format=torch.channels_last)
    x = torch.randn(1, 3, 224, 224).contiguous(memory_format=torch.channels_last)
    medians: list[float] = []
    steal0, start = steal_jiffies(), time.time()
    with pinned(1), torch.inference_mode():
        for _ in range(10):
            net(x)
        while time.time() - start < args.seconds:
            times, begin = [], time.perf_counter()
            while time.perf_counter() - begin < args.window:
                t0 = time.perf_counter()
                net(x)
                times.append((time.perf_counter() - t0) * 1000)
            medians.append(round(statistics.median(times), 3))
    stolen = (steal_jiffies() - steal0) / os.sysconf("SC_CLK_TCK")
    wall = time.time() - start
    steps = [abs(b / a - 1) for a, b in zip(medians, medians[1:], strict=False)]
    summary = {"network": "mobilenet_v2, eager, 1 thread pinned, batch 1, 224 px",
               "window_s": args.window, "medians_ms": medians,
               "slowest_over_fastest": round(max(medians) / min(medians), 3),
               "windows_moving_over_10pct": sum(s > 0.10 for s in steps),
               "window_steps": len(steps),
               "stolen_cpu_seconds": round(stolen, 2), "wall_seconds": round(wall, 1),
               "when": time.strftime("%Y-%m-%d %H:%M:%S")}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "noise.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(summary) + "\n")
    print(f"{len(medians)} windows of {args.window:g} s: medians {min(medians):.2f}-"
          f"{max(medians):.2f} ms (slowest/fastest {summary['slowest_over_fastest']}), "
          f"{summary['windows_moving_over_10pct']} of {len(steps)} steps over 10%; "
          f"{stolen:.1f} CPU-seconds stolen by the hypervisor in {wall:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
