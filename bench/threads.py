"""Trainings per minute on this machine: one training on all cores, or one per core at once.

    python bench/threads.py [--arch mobilenet_v2 --width 0.75 --epochs 1]

Runs `mbnas train` (the default proxy protocol, one epoch by default) once with
``--threads N`` (N = the cores), then N trainings at once with ``--threads 1``, in the same
run so that both see the same machine, and prints the throughput ratio (> 1: one training
per core trains more networks per minute).  This decides how a search spends its CPUs on
the phases whose trainings do not wait on each other (references, confirmation).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time


def train(args, threads: int, seed: int, out: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "mbnas", "train", args.arch, "--width", str(args.width),
           "--epochs", str(args.epochs), "--threads", str(threads), "--seed", str(seed),
           "--device", "cpu", "--out", out]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def timed(procs: list[subprocess.Popen]) -> float:
    start = time.perf_counter()
    for p in procs:
        _, err = p.communicate()
        if p.returncode:
            sys.exit(f"bench/threads.py: a training failed: {err.strip().splitlines()[-1]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="mobilenet_v2")
    parser.add_argument("--width", type=float, default=0.75)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    args = parser.parse_args()
    n = args.cores
    with tempfile.TemporaryDirectory() as tmp:
        # Both orders, so that neither layout always runs on a warmer machine.
        together = timed([train(args, n, 0, f"{tmp}/a")])
        apart = timed([train(args, 1, i, f"{tmp}/b{i}") for i in range(n)])
        apart2 = timed([train(args, 1, i, f"{tmp}/c{i}") for i in range(n)])
        together2 = timed([train(args, n, 1, f"{tmp}/d")])
    one = (together + together2) / 2  # seconds per training, all cores on one
    per = (apart + apart2) / 2 / n  # seconds per training, one core each, n at once
    print(f"{args.arch} x{args.width:g}, {args.epochs} epoch(s), {n} cores")
    print(f"  one training on {n} threads:  {together:.1f} s, {together2:.1f} s")
    print(f"  {n} trainings on 1 thread each: {apart:.1f} s, {apart2:.1f} s (all {n})")
    print(f"  trainings per minute: {60 / one:.2f} vs {60 / per:.2f}; "
          f"ratio (one per core / all cores on one) {one / per:.2f}")


if __name__ == "__main__":
    main()
