"""What MACs miss: the MobileNets (and any network given) timed end to end on this
machine, in ONNX Runtime and PyTorch eager, at 1 and 2 threads, ranked by MACs and by
latency.  (Issue 21 item 5.)

    python bench/latency_networks.py --out bench/latency/networks \
        --arch "quick-start winner=$(jq -r .winner.arch runs/search-300M/best.json)"

Each runtime and thread count runs in a fresh process (running one runtime moves the
other's eager timings), batch 1, 224 px, 1000 classes; each network is timed as
``mbnas latency build`` times a part: pinned to as many cores as threads, ``--rounds``
interleaved rounds of at least 20 calls and 0.05 s, the median of the rounds' medians
kept with their quartiles.  Nothing else may run on the machine meanwhile.
Rows: ``--out``/``networks.csv``; the printed table is the README's.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mbnas.arch.cost import count  # noqa: E402
from mbnas.arch.encoding import encode  # noqa: E402
from mbnas.arch.seeds import SEEDS, parse_arch, seed  # noqa: E402
from mbnas.latency.table import RUNTIMES  # noqa: E402

THREADS = (1, 2)


def networks(extra: list[str]) -> list[tuple[str, str]]:
    """``(name, encoding)``: the four MobileNets, the rivals scaled to 300M, and ``extra``
    (``NAME=ARCH``)."""
    from mbnas.search.rivals import scaled

    out = [(name, encode(seed(name))) for name in SEEDS]
    rivals, _ = scaled(300_000_000, resolution=224, num_classes=1000)
    out += [(r.label, encode(r.arch)) for r in rivals]
    for item in extra:
        name, _, arch = item.partition("=")
        out.append((name, encode(parse_arch(arch, resolution=224, num_classes=1000))))
    return out


def one(runtime: str, threads: int, nets: list[tuple[str, str]], rounds: int) -> list[dict]:
    from mbnas.arch.encoding import decode
    from mbnas.latency.measure import Timer

    timer = Timer(runtime, threads)
    # Interleaved rounds (a slow moment of the machine hits every network), pinned.
    entries = timer.time_networks({name: decode(arch) for name, arch in nets}, 1,
                                  rounds=rounds)
    return [{"runtime": runtime, "threads": threads, "name": name, "arch": arch,
             "macs": count(decode(arch)).macs,
             "median_ms": round(entries[name].median_ms, 3),
             "q1_ms": round(entries[name].q1_ms, 3), "q3_ms": round(entries[name].q3_ms, 3)}
            for name, arch in nets]


def report(rows: list[dict]) -> None:
    names = list(dict.fromkeys(r["name"] for r in rows))
    combos = list(dict.fromkeys((r["runtime"], r["threads"]) for r in rows))
    by = {(r["name"], r["runtime"], r["threads"]): r for r in rows}
    macs = {r["name"]: r["macs"] for r in rows}
    rank_macs = {n: i for i, n in enumerate(sorted(names, key=macs.get), 1)}
    header = ["network", "MACs", "rank"] + [f"{rt} {t}T ms (rank)" for rt, t in combos]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    ranks = {}
    for rt, t in combos:
        order = sorted(names, key=lambda n: by[(n, rt, t)]["median_ms"])
        ranks[(rt, t)] = {n: i for i, n in enumerate(order, 1)}
    for n in sorted(names, key=macs.get):
        cells = [n, f"{macs[n] / 1e6:.1f}M", str(rank_macs[n])]
        for rt, t in combos:
            r = by[(n, rt, t)]
            cells.append(f"{r['median_ms']:.2f} ({ranks[(rt, t)][n]})")
        print("| " + " | ".join(cells) + " |")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="bench/latency/networks")
    p.add_argument("--arch", action="append", default=[], metavar="NAME=ARCH",
                   help="another network to time (an encoding, seed name or spec file)")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--one", nargs=2, metavar=("RUNTIME", "THREADS"), help=argparse.SUPPRESS)
    args = p.parse_args()
    out = Path(args.out)
    nets = networks(args.arch)
    if args.one:
        rows = one(args.one[0], int(args.one[1]), nets, args.rounds)
        print(json.dumps(rows))
        return 0
    path = out / "networks.csv"
    if not args.report_only:
        out.mkdir(parents=True, exist_ok=True)
        (out / "COMMAND").write_text("python " + shlex.join(["bench/latency_networks.py",
                                                             *sys.argv[1:]]) + "\n")
        rows = []
        for runtime in RUNTIMES:
            for threads in THREADS:
                cmd = [sys.executable, __file__, "--one", runtime, str(threads),
                       "--rounds", str(args.rounds)]
                for a in args.arch:
                    cmd += ["--arch", a]
                print(f"timing {runtime} at {threads} thread(s)...", file=sys.stderr,
                      flush=True)
                done = subprocess.run(cmd, check=True, capture_output=True, text=True)
                rows += json.loads(done.stdout.strip().splitlines()[-1])
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    with path.open(newline="") as f:
        rows = [{**r, "threads": int(r["threads"]), "macs": int(r["macs"]),
                 "median_ms": float(r["median_ms"])} for r in csv.DictReader(f)]
    report(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
