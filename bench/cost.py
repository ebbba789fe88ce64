"""How fast the analytic counter prices specs, against counting built modules.

    .venv/bin/python bench/cost.py [--specs N]

Both paths price the same specs (MobileNetV1/V2 over their published width x
resolution grids, cycled to N); the counts must agree exactly.  Prints specs/s for
each and the ratio (the analytic path should be >= 1000x faster).
"""

from __future__ import annotations

import argparse
import itertools
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from mbnas.arch.cost import count
from mbnas.arch.seeds import parse_arch
from mbnas.nn.network import build

GRID = [("mobilenet_v1", w, r) for w in (1.0, 0.75, 0.5, 0.25) for r in (224, 192, 160, 128)]
GRID += [("mobilenet_v2", w, r) for w in (1.4, 1.0, 0.75, 0.5, 0.35)
         for r in (224, 192, 160, 128, 96)]


def flop_counter_macs(arch) -> int:
    model = build(arch).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, arch.resolution, arch.resolution))
    return counter.get_total_flops() // 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", type=int, default=len(GRID))
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    archs = [parse_arch(n, width=w, resolution=r)
             for n, w, r in itertools.islice(itertools.cycle(GRID), args.specs)]

    repeats = 200
    start = time.perf_counter()
    for _ in range(repeats):
        analytic = [count(a).macs for a in archs]
    analytic_rate = repeats * len(archs) / (time.perf_counter() - start)

    start = time.perf_counter()
    measured = [flop_counter_macs(a) for a in archs]
    measured_rate = len(archs) / (time.perf_counter() - start)

    assert analytic == measured, "analytic and flop_counter counts disagree"
    print(f"specs priced:                 {len(archs)} (counts agree exactly)")
    print(f"analytic (mbnas.arch.cost.count):  {analytic_rate:12,.0f} specs/s")
    print(f"build + flop_counter:         {measured_rate:12,.1f} specs/s")
    print(f"ratio:                        {analytic_rate / measured_rate:12,.0f}x")


if __name__ == "__main__":
    main()
