"""Does a long search hold?  Driver memory, open files, disk, and the run's records.

    .venv/bin/python bench/soak.py [--trials 400] [--concurrency 2] [--out DIR]

Runs ``mbnas search`` as a user would (a subprocess, local Ray) on the tiny test space
and the synthetic data set, about a second per trial, and samples the driver process
from /proc: its resident memory and open file descriptors after the first trial, after
50 and at the end.  Then prints trials per minute and the run folder's size per trial,
and checks the run: the study, ``trials.csv`` and ``best.json`` agree; no trial is lost
(every one counted, none running, queued or interrupted); no Tune checkpoint is left;
``weights/`` holds exactly what ``--keep-weights`` keeps; the folder without the kept
weights stays under BYTES_PER_TRIAL per trial; and, from 100 trials on, memory and open
files at the end are within MEMORY_MARGIN / FILES_MARGIN of those after 50 trials.
Exit status 1 if a check fails.  ``tests/test_soak.py`` runs a short version.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "spaces" / "tiny.yaml"
BUDGET = 6_000_000
BYTES_PER_TRIAL = 100_000  # besides the kept weights; docs/search.md, "Disk stays bounded"
MEMORY_MARGIN = 0.10  # end vs after 50 trials, resident memory
FILES_MARGIN = 5  # end vs after 50 trials, open file descriptors
COUNTED = ("complete", "stopped", "failed", "diverged")


@dataclass
class Sample:
    trials: int  # counted trials in trials.csv when taken
    seconds: float  # since the search started
    rss: int  # bytes
    files: int  # open file descriptors


def sample_driver(pid: int) -> tuple[int, int] | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        files = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:  # it has just exited
        return None
    rss = [int(line.split()[1]) * 1024 for line in status.splitlines()
           if line.startswith("VmRSS:")]
    return (rss[0], files) if rss else None  # none: a zombie


def read_rows(path: Path) -> list[dict]:
    try:
        with path.open(newline="") as f:
            return list(csv.DictReader(f))
    except (OSError, csv.Error):
        return []


def counted(rows: list[dict]) -> int:
    return sum(r["state"] in COUNTED and r["role"] != "reference" for r in rows)


def run_search(runs: Path, trials: int, concurrency: int, keep: str,
               per_tune_run: int | None) -> tuple[list[Sample], float]:
    args = ["search", "--budget", "6M", "--space", str(TINY), "--dataset", "synthetic",
            "--epochs", "2", "--lr", "0.2", "--batch-size", "32", "--no-confirm",
            "--trials", str(trials), "--concurrency", str(concurrency),
            "--cpus-per-trial", "1", "--threads", "1", "--references", "none",
            "--keep-weights", keep, "--runs-dir", str(runs), "--name", "soak"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")]))}
    if per_tune_run:
        env["MBNAS_TRIALS_PER_TUNE_RUN"] = str(per_tune_run)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "mbnas", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    samples: list[Sample] = []
    csv_path = runs / "soak" / "trials.csv"
    while proc.poll() is None:
        time.sleep(0.5)
        done = counted(read_rows(csv_path))
        taken = sample_driver(proc.pid)
        if taken and done:
            samples.append(Sample(done, time.perf_counter() - start, *taken))
    wall = time.perf_counter() - start
    err = proc.stderr.read()
    if proc.returncode != 0:
        sys.exit(f"soak: the search failed ({proc.returncode}):\n{err[-3000:]}")
    return samples, wall


def at(samples: list[Sample], trials: int) -> Sample:
    """The first sample with at least ``trials`` counted (the last one if none has)."""
    return next((s for s in samples if s.trials >= trials), samples[-1])


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def check_records(run_dir: Path, trials: int, keep_best: int) -> list[str]:
    """What is wrong with the finished run's records (nothing: an empty list)."""
    import optuna

    from mbnas.outcome import parse_role
    from mbnas.search.study import network_key

    problems = []
    rows = read_rows(run_dir / "trials.csv")
    study = optuna.load_study(study_name="search", storage=f"sqlite:///{run_dir / 'study.db'}")
    by_number = {int(r["number"]): r for r in rows if r["role"] != "reference"}
    if sorted(by_number) != [t.number for t in study.trials]:
        problems.append("trials.csv and the study hold different trials")
    # A repeat (an architecture trained already, answered from that trial) is told to
    # Optuna with the original's value, or as pruned when the original has none.
    states = {optuna.trial.TrialState.COMPLETE: {"complete", "repeat"},
              optuna.trial.TrialState.PRUNED: {"stopped", "over_budget", "repeat"},
              optuna.trial.TrialState.FAIL: {"failed", "diverged"}}
    for t in study.trials:
        row = by_number.get(t.number)
        if row is None:
            continue
        if row["state"] not in states.get(t.state, set()):
            problems.append(f"trial {t.number}: study {t.state.name}, csv {row['state']}")
        if row["arch"] != t.user_attrs.get("arch") or int(row["macs"]) != t.user_attrs["macs"]:
            problems.append(f"trial {t.number}: arch or MACs differ")
        if t.state == optuna.trial.TrialState.COMPLETE and not math.isclose(
                float(row["val_acc"]), t.value):
            problems.append(f"trial {t.number}: val_acc differs")
        if row["state"] == "repeat":
            original = by_number.get(parse_role(row["role"])[1])
            if not original or network_key(original["arch"]) != network_key(row["arch"]) \
                    or original["state"] == "repeat":  # one network, maybe another spec
                problems.append(f"trial {t.number}: a repeat without its original")
    lost = [r["number"] for r in rows if r["state"] in ("running", "queued", "interrupted")]
    failed = [r["number"] for r in rows if r["state"] in ("failed", "diverged")]
    if counted(rows) != trials or lost or failed:
        problems.append(f"{counted(rows)} of {trials} trials counted; lost {lost}, "
                        f"failed {failed}")
    best = json.loads((run_dir / "best.json").read_text())
    done = [r for r in rows if r["state"] == "complete"]
    top = max(done, key=lambda r: (float(r["val_acc"]), -int(r["macs"])))
    winner = best["winner"]
    if not winner or (winner["number"], winner["val_acc"]) != (int(top["number"]),
                                                                float(top["val_acc"])):
        problems.append(f"best.json's winner {winner and winner['number']} is not the most "
                        f"accurate completed trial {top['number']}")
    if int(top["macs"]) > BUDGET:
        problems.append("the winner is over budget")
    if list((run_dir / "ray").glob("*/*/checkpoint_*")):
        problems.append("Tune checkpoints were left in ray/")
    kept = sorted(Path(r["checkpoint"]).name for r in done if r["weights"] == "kept")
    ranked = sorted(done, key=lambda r: (-float(r["val_acc"]), int(r["macs"]),
                                         int(r["number"])))[:keep_best]
    if kept != sorted(f"trial-{r['number']}.pt" for r in ranked):
        problems.append(f"the kept weights {kept} are not the best {keep_best}")
    if kept != sorted(p.name for p in (run_dir / "weights").iterdir()):
        problems.append("weights/ holds other files than the kept weights")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--keep-best", type=int, default=5)
    parser.add_argument("--trials-per-tune-run", type=int,
                        help="override mbnas.search.tune.TRIALS_PER_TUNE_RUN (100)")
    parser.add_argument("--out", type=Path, help="keep the run folder here (default: a temp "
                                                 "folder, removed)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        runs = args.out or Path(temp)
        samples, wall = run_search(runs, args.trials, args.concurrency,
                                   f"best:{args.keep_best}", args.trials_per_tune_run)
        run_dir = runs / "soak"
        # The end: when the last trial is counted, before the driver shuts Ray down.
        first, fifty, end = samples[0], at(samples, 50), at(samples, args.trials)
        rows = read_rows(run_dir / "trials.csv")
        finished = counted(rows)
        total, weights = folder_bytes(run_dir), folder_bytes(run_dir / "weights")
        print(f"soak: {finished} trials (tiny space, synthetic data, --concurrency "
              f"{args.concurrency}) in {wall:.0f}s")
        for label, s in (("after the first trial", first), ("after 50 trials", fifty),
                         ("at the end", end)):
            print(f"  driver {label:<22} ({s.trials:>4} counted, {s.seconds:4.0f}s): "
                  f"{s.rss / 2**20:7.1f} MiB resident, {s.files:4d} open files")
        marks = range(100, args.trials, 100)
        if marks:
            print("  driver memory on the way: " + ", ".join(
                f"{at(samples, n).rss / 2**20:.1f} MiB at {n}" for n in marks))
        rate = 60 * finished / wall
        later = (end.trials - fifty.trials) / max(end.seconds - fifty.seconds, 1e-9) * 60
        print(f"  {rate:.1f} trials/min overall; {60 * fifty.trials / fifty.seconds:.1f} in "
              f"the first {fifty.trials}, {later:.1f} after")
        print(f"  run folder {total / 2**20:.2f} MiB = {total / finished / 1e3:.1f} KB per "
              f"trial; without the {len(list((run_dir / 'weights').iterdir()))} kept weights "
              f"files: {(total - weights) / finished / 1e3:.1f} KB per trial "
              f"(bound {BYTES_PER_TRIAL / 1e3:.0f} KB); study.db "
              f"{(run_dir / 'study.db').stat().st_size / 2**20:.2f} MiB, ray/ "
              f"{folder_bytes(run_dir / 'ray') / 2**20:.2f} MiB")
        problems = check_records(run_dir, args.trials, args.keep_best)
        if (total - weights) / finished >= BYTES_PER_TRIAL:
            problems.append("the run folder is over its bound per trial")
        if args.trials >= 100:
            if end.rss > fifty.rss * (1 + MEMORY_MARGIN):
                problems.append(f"driver memory grew {end.rss / fifty.rss - 1:.0%} after 50 "
                                f"trials (margin {MEMORY_MARGIN:.0%})")
            if end.files > fifty.files + FILES_MARGIN:
                problems.append(f"driver open files grew by {end.files - fifty.files} after 50 "
                                f"trials (margin {FILES_MARGIN})")
        for problem in problems:
            print(f"  FAIL: {problem}")
        if not problems:
            print("  ok: study, trials.csv and best.json agree; no trial lost; no checkpoint "
                  "left; weights as kept; folder within bound"
                  + ("; memory and open files within margin" if args.trials >= 100 else ""))
        return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
