"""What a search spends outside training, and what --concurrency 2 buys on this machine.

    .venv/bin/python bench/search_overhead.py [--trials 4] [--budget 60M]

Runs the same small search twice with the default protocol (real Ray, real Optuna,
Fashion-MNIST): once one trial at a time with all CPUs, once two at a time with half
each.  For each it prints the share of a trial's wall time (seen by the driver, from
Optuna's ask to its tell) that is not the trial's own training and validation epochs:
sampling, Ray scheduling, worker start-up, data loading, model building, checkpoints,
storage.  The first trial on each worker pays the start-up (imports, data set); the
workers are then reused, so the later ("warm") trials show the steady state a long
search sees.  Then the speed-up in trials per wall second.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from mbnas.search.run import SearchSettings, run_search
from mbnas.training.protocol import Protocol
from mbnas.units import parse_count


def one_search(runs: Path, name: str, trials: int, budget: int, concurrency: int) -> dict:
    cpus = max(1, (os.cpu_count() or 2) // concurrency)
    settings = SearchSettings(budget=budget, name=name, trials=trials, runs_dir=runs,
                              concurrency=concurrency, cpus_per_trial=cpus,
                              early_stopping=False, references=(), protocol=Protocol())
    start = time.perf_counter()
    outcome = run_search(settings, log=lambda message: None)
    wall = time.perf_counter() - start
    done = sorted((r for r in outcome.rows if r.complete and not r.is_reference),
                  key=lambda r: r.number)
    return {"wall": wall, "trials": len(done), "cold": done[:concurrency],
            "warm": done[concurrency:]}


def overhead(rows: list) -> str:
    if not rows:
        return "none"
    wall = sum(r.seconds for r in rows)
    training = sum(r.train_seconds for r in rows)
    return (f"{len(rows)} trial(s) of {wall / len(rows):.1f}s, "
            f"{(wall - training) / len(rows):.2f}s = {100 * (wall - training) / wall:.1f}% "
            "not training")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--budget", default="60M")
    args = parser.parse_args()
    budget = parse_count(args.budget)
    with tempfile.TemporaryDirectory() as folder:
        results = {}
        for concurrency in (1, 2):
            r = one_search(Path(folder), f"c{concurrency}", args.trials, budget, concurrency)
            results[concurrency] = r
            trial_wall = sum(row["seconds"] for row in r["cold"] + r["warm"])
            print(f"concurrency {concurrency}: {r['trials']} trials in {r['wall']:.1f}s "
                  "(search wall, Ray start included)")
            print(f"    first trial per worker: {overhead(r['cold'])}")
            print(f"    later trials (warm):    {overhead(r['warm'])}")
            print(f"    all trials:             {overhead(r['cold'] + r['warm'])}")
            print(f"    search wall not spent in trials: "
                  f"{100 * (1 - trial_wall / concurrency / r['wall']):.1f}%")
        one, two = results[1], results[2]
        print(f"speed-up of --concurrency 2 over 1: "
              f"{(two['trials'] / two['wall']) / (one['trials'] / one['wall']):.2f}x "
              "(trials per wall second)")


if __name__ == "__main__":
    main()
