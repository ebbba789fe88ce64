"""Does the default search find better networks than the MobileNets scaled to its budget,
and than sampling the same space at random?  (Issue 20; Li & Talwalkar 2019, Yang et al.
2020: random sampling of a space is the baseline a NAS method must beat.)

    python bench/search_quality.py --out bench/search_quality/default

1. Searches: ``--searches`` independent runs per sampler (TPE and random; sampler seeds
   0, 1, ...), each the default search (``mbnas search --budget 300M``: the default
   protocol and trial count, both samplers starting from the same seed candidates)
   without its references or confirmation, one after another on all cores, as a user
   runs it.  Each search's answer is its proxy winner.
2. Retraining: every search's winner and the rivals (V1, V2 and V3-Large scaled to the
   budget) under one common protocol of higher fidelity than the search's
   (``--subset`` images x ``--epochs``; default 12,000 x 4, 2.7x the proxy's 6,000 x 3
   and 1.6x the confirmation's 6,000 x 5) at ``--seeds`` seeds, one thread per training,
   two at a time.  A network found by several searches is trained once.
3. Report, per sampler: the winners' mean ± spread (of each winner's mean over seeds),
   and how many winners beat the best rival by more than twice the seed spread pooled
   over every retrained network (wins), fall behind it by more than that (losses), or
   neither (ties).  Accuracy is on the data set's 10,000 test images (the search never
   sees them; validation accuracy is recorded too).

Resumable: a finished search is resumed as done (``mbnas search`` itself), a finished
training (its ``metrics.json``) is not repeated.  The runs and trainings live under
``--work`` (git-ignored ``runs/``); the rows, under ``--out``: ``searches.csv``,
``retrains.csv``, ``COMMAND`` and each search's ``trials.csv``.  On the 2-core machine
the default settings take about two hours: ~9-10 min per search, ~2-3 min per training.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mbnas.arch.encoding import encode, network_key  # noqa: E402
from mbnas.search.confirm import LEAD_IN_SPREADS  # noqa: E402
from mbnas.search.rivals import scaled  # noqa: E402
from mbnas.stats import pooled_std  # noqa: E402
from mbnas.units import parse_count  # noqa: E402

SAMPLERS = ("tpe", "random")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def target_args(args) -> list[str]:
    """The options every search and training shares: data set and target spec."""
    out = ["--dataset", args.dataset]
    if args.resolution:
        out += ["--resolution", str(args.resolution)]
    return out


def run_search(work: Path, sampler: str, seed: int, args) -> dict:
    """One default search (resumed if it ran before); its proxy winner."""
    name = f"{args.variant + '-' if args.variant else ''}{sampler}-{seed}"
    command = [sys.executable, "-m", "mbnas", "search", "--budget", args.budget,
               "--sampler", sampler, "--seed", str(seed), "--name", name,
               "--runs-dir", str(work / "runs"), "--references", "none", "--no-confirm",
               *target_args(args), *args.search_args]
    started = time.monotonic()
    with (work / f"{name}.log").open("a") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"search {name} failed (exit {done.returncode}); see "
                         f"{work / (name + '.log')}")
    best = json.loads((work / "runs" / name / "best.json").read_text())
    winner = best["proxy_winner"]  # (a run that was confirmed before names its winner too)
    with (work / "runs" / name / "trials.csv").open(newline="") as f:
        trials = [r for r in csv.DictReader(f) if r["number"]]  # not the references
    return {"search": name, "sampler": sampler, "seed": seed, "winner": winner["number"],
            "role": winner.get("role", ""), "arch": winner["arch"], "macs": winner["macs"],
            "proxy_val_acc": winner["val_acc"],
            # the trials' own wall time (a resumed search's earlier sessions included)
            "trial_minutes": round(sum(float(r["seconds"] or 0) for r in trials) / 60, 1),
            "this_session_minutes": round((time.monotonic() - started) / 60, 1)}


def train(work: Path, key: str, arch: str, seed: int, args) -> dict:
    """One retraining under the common protocol (skipped when it finished before)."""
    out = work / "retrain" / f"{key}-seed{seed}"
    metrics = out / "metrics.json"
    if not metrics.exists():
        command = [sys.executable, "-m", "mbnas", "train", arch, "--subset", str(args.subset),
                   "--epochs", str(args.epochs), "--seed", str(seed), "--threads", "1",
                   "--dataset", args.dataset, "--out", str(out)]
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        if done.returncode != 0:
            raise SystemExit(f"training {key} seed {seed} failed: {done.stderr[-2000:]}")
    m = json.loads(metrics.read_text())
    return {"network": key, "arch": arch, "seed": seed, "val_acc": m["val_acc"],
            "test_acc": m.get("test_acc"), "seconds": round(m.get("seconds", 0.0), 1)}


def report(searches: list[dict], retrains: list[dict], rivals: dict[str, int],
           metric: str) -> str:
    """The per-sampler table: winners' mean ± spread, wins / ties / losses against the
    best rival (``rivals``: label -> MACs)."""
    by_network: dict[str, list[float]] = {}
    for r in retrains:
        by_network.setdefault(r["network"], []).append(100 * r[metric])
    means = {k: statistics.fmean(v) for k, v in by_network.items()}
    noise = pooled_std(list(by_network.values()))
    lines = [f"common protocol, {metric}: seed spread pooled over {len(by_network)} networks "
             f"= {noise:.2f} points; a lead counts beyond {LEAD_IN_SPREADS:g}x that "
             f"({LEAD_IN_SPREADS * noise:.2f})", ""]
    lines.append("| network | MACs | mean ± spread | seeds |")
    lines.append("|---|---|---|---|")
    for label in rivals:
        values = by_network.get(label, [])
        lines.append(f"| rival {label} | {rivals[label] / 1e6:.1f}M | "
                     f"{_pm(values)} | {len(values)} |")
    best_rival = max((label for label in rivals if label in means), key=means.get,
                     default=None)
    for s in searches:
        values = by_network.get(s["network"], [])
        lines.append(f"| {s['search']} winner, trial {s['winner']} ({s['role'] or 'search'}) "
                     f"| {s['macs'] / 1e6:.1f}M | {_pm(values)} | {len(values)} |")
    lines += ["", "| sampler | searches | winners' mean ± spread | wins | ties | losses | "
              f"ahead of {best_rival} |", "|---|---|---|---|---|---|---|"]
    for sampler in SAMPLERS:
        mine = [s for s in searches if s["sampler"] == sampler and s["network"] in means]
        if not mine or best_rival is None:
            continue
        leads = [means[s["network"]] - means[best_rival] for s in mine]
        wins = sum(lead > LEAD_IN_SPREADS * noise for lead in leads)
        losses = sum(lead < -LEAD_IN_SPREADS * noise for lead in leads)
        lines.append(f"| {sampler} | {len(mine)} | "
                     f"{_pm([means[s['network']] for s in mine])} | {wins} | "
                     f"{len(mine) - wins - losses} | {losses} | "
                     f"{sum(lead > 0 for lead in leads)} of {len(mine)} |")
    return "\n".join(lines)


def _pm(values: list[float]) -> str:
    if not values:
        return "not trained"
    if len(values) == 1:
        return f"{values[0]:.2f}%"
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}%"


def write_rows(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def searches_per_sampler(text: str, samplers: list[str], parser) -> dict[str, int]:
    """``3`` (every sampler) or ``tpe=3,random=2`` -> searches per sampler."""
    try:
        if "=" not in text:
            return dict.fromkeys(samplers, int(text))
        counts = {k: int(v) for k, v in (item.split("=") for item in text.split(","))}
    except ValueError:
        parser.error(f"--searches: {text!r} is not N or SAMPLER=N,...")
    if set(counts) != set(samplers) or min(counts.values()) < 1:
        parser.error(f"--searches: give a positive count for each of {', '.join(samplers)}")
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "search_quality" /
                        "default", help="where the rows go (committed)")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "search-quality",
                        help="where the runs and trainings go (git-ignored)")
    parser.add_argument("--budget", default="300M")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--resolution", type=int, help="target resolution (default 224)")
    parser.add_argument("--searches", default="3",
                        help="per sampler: N for every sampler, or e.g. tpe=3,random=2")
    parser.add_argument("--samplers", default=",".join(SAMPLERS),
                        help=f"comma-separated, from {', '.join(SAMPLERS)} (default both)")
    parser.add_argument("--variant", default="",
                        help="a name for searches run with other options (after --): "
                             "their runs and trainings are kept apart from the default's, "
                             "the rivals' trainings shared")
    parser.add_argument("--subset", type=int, default=12_000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seeds", default="2000,2001,2002",
                        help="of the retrainings (the searches use 0, 1, ...; their "
                             "confirmations 1000 and up)")
    parser.add_argument("--jobs", type=int, default=2, help="retrainings at a time")
    parser.add_argument("--report-only", action="store_true",
                        help="print the table from the rows under --out")
    parser.add_argument("search_args", nargs="*",
                        help="after --: more options for every mbnas search")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    budget = parse_count(args.budget)
    seeds = [int(s) for s in args.seeds.split(",")]

    rival_list, _ = scaled(budget, resolution=args.resolution, num_classes=1000)
    rivals = {r.label: encode(r.arch) for r in rival_list}
    rival_macs = {r.label: r.macs for r in rival_list}
    rival_of = {network_key(a): label for label, a in rivals.items()}

    searches = []
    if args.report_only:
        with (args.out / "searches.csv").open(newline="") as f:
            searches = [dict(r, macs=int(r["macs"]), winner=int(r["winner"]))
                        for r in csv.DictReader(f)]
        with (args.out / "retrains.csv").open(newline="") as f:
            retrains = [dict(r, val_acc=float(r["val_acc"]), test_acc=float(r["test_acc"]))
                        for r in csv.DictReader(f)]
        print(report(searches, retrains, rival_macs, "test_acc"))
        print()
        print(report(searches, retrains, rival_macs, "val_acc"))
        return
    (args.out / "COMMAND").write_text(
        "python bench/search_quality.py " + " ".join(sys.argv[1:]) + "\n")

    samplers = [s for s in args.samplers.split(",") if s]
    if not samplers or set(samplers) - set(SAMPLERS):
        parser.error(f"--samplers: choose from {', '.join(SAMPLERS)}")
    counts = searches_per_sampler(args.searches, samplers, parser)
    order = [(sampler, seed) for seed in range(max(counts.values())) for sampler in samplers
             if seed < counts[sampler]]
    for i, (sampler, seed) in enumerate(order, 1):
        log(f"search {i}/{len(order)}: {sampler}, seed {seed}")
        row = run_search(args.work, sampler, seed, args)
        key = network_key(row["arch"])
        row["network"] = rival_of.get(key) or f"{row['search']}-trial{row['winner']}"
        searches.append(row)
        shutil.copy(args.work / "runs" / row["search"] / "trials.csv",
                    args.out / f"{row['search']}.trials.csv")
        write_rows(args.out / "searches.csv", searches)
        log(f"  winner trial {row['winner']} ({row['role'] or 'search'}): "
            f"{100 * row['proxy_val_acc']:.2f}% proxy, {row['macs'] / 1e6:.1f}M MACs, "
            f"trials {row['trial_minutes']} min")

    # One training per distinct network and seed.
    networks: dict[tuple, tuple[str, str]] = {}
    for label, arch in rivals.items():
        networks.setdefault(network_key(arch), (label, arch))
    for s in searches:
        networks.setdefault(network_key(s["arch"]), (s["network"], s["arch"]))
    for s in searches:  # a winner that is another search's winner shares its trainings
        s["network"] = networks[network_key(s["arch"])][0]
    write_rows(args.out / "searches.csv", searches)
    # Seed by seed, so that a run cut short has every network at its first seeds.
    jobs = [(label, arch, seed) for seed in seeds for label, arch in networks.values()]
    log(f"retraining {len(networks)} networks at {len(seeds)} seeds ({len(jobs)} trainings, "
        f"{args.subset:,} images x {args.epochs} epochs, {args.jobs} at a time)")
    retrains: list[dict] = []
    lock = threading.Lock()

    def one(job):
        label, arch, seed = job
        row = train(args.work, label, arch, seed, args)
        with lock:
            retrains.append(row)
            retrains.sort(key=lambda r: (r["network"], r["seed"]))
            write_rows(args.out / "retrains.csv", retrains)
        log(f"  {len(retrains)}/{len(jobs)} {label} seed {seed}: "
            f"test {100 * row['test_acc']:.2f}%, val {100 * row['val_acc']:.2f}%"
            + (f" ({row['seconds']:.0f} s)" if row["seconds"] else ""))
        return row

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        list(pool.map(one, jobs))
    print()
    print(report(searches, retrains, rival_macs, "test_acc"))
    print()
    print(report(searches, retrains, rival_macs, "val_acc"))


if __name__ == "__main__":
    main()
