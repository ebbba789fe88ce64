"""Does a confirmed winner's lead survive more seeds?  Retrains two architectures of a
finished run at six confirmation seeds each and applies the search's own rule.

    python bench/quickstart/six_seeds.py bench/quickstart/default 14 1 --epochs 6

trains trial 14 (the winner) and trial 1 (MobileNetV2 0.75, the widest V2 within 300M)
of that run at seeds 1000-1005, 6 epochs, one thread each, two at a time, with
``mbnas train`` (resumable: a finished training in ``--out`` is not repeated); prints mean
± sample standard deviation and the search's own verdict on them
(``mbnas.search.confirm.verdict``: the lead against twice the seed spread pooled over
both); writes the rows to ``OUT/six_seeds.csv``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from mbnas.search.confirm import seed_spread, verdict  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="a run folder (its trials.csv)")
    parser.add_argument("winner", help="trial number of the winner")
    parser.add_argument("rival", help="trial number to compare with")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seeds", default="1000,1001,1002,1003,1004,1005")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "six-seeds")
    args = parser.parse_args(argv)

    with (args.run / "trials.csv").open(newline="") as f:
        trials = {r["number"]: r for r in csv.DictReader(f) if r["number"]}
    seeds = [int(s) for s in args.seeds.split(",")]
    jobs = [(number, seed) for number in (args.winner, args.rival) for seed in seeds]

    def train(job: tuple[str, int]) -> dict:
        number, seed = job
        out = args.out / f"trial-{number}-seed-{seed}"
        metrics = out / "metrics.json"
        if not metrics.exists():
            command = [sys.executable, "-m", "mbnas", "train", trials[number]["arch"],
                       "--epochs", str(args.epochs), "--seed", str(seed), "--threads", "1",
                       "--out", str(out)]
            subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
        val = 100 * json.loads(metrics.read_text())["val_acc"]  # a fraction there
        print(f"trial {number} seed {seed}: {val:.2f}%", flush=True)
        return {"trial": number, "seed": seed, "epochs": args.epochs, "val_acc": val}

    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(train, jobs))
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "six_seeds.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    # The search's own rule (mbnas.search.confirm.verdict), on its rows (fractions).
    confirmed = []
    for number, kind in ((args.winner, "candidate"), (args.rival, "mobilenet")):
        accs = [r["val_acc"] / 100 for r in rows if r["trial"] == number]
        confirmed.append({"label": f"trial {number}", "kind": kind, "same_as": None,
                          "arch": trials[number]["arch"], "macs": int(trials[number]["macs"]),
                          "val_accs": accs, "mean": statistics.fmean(accs),
                          "spread": seed_spread(accs), "seeds": len(accs)})
    decided = verdict(confirmed)
    stderr = decided["noise"] * math.sqrt(2 / len(seeds))
    print(decided["text"])
    print(f"the lead is {decided['lead'] / stderr:.1f} standard errors of the difference")

if __name__ == "__main__":
    main()
