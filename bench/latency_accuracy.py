"""How well does a latency table predict whole networks it never saw?  (Issue 21.)

    python bench/latency_accuracy.py --out bench/latency/default
    python bench/latency_accuracy.py --out bench/latency/context --method context --build 60
    python bench/latency_accuracy.py --out bench/latency/canary --canary
    python bench/latency_accuracy.py --out bench/latency/rounds20-5 --test-seed 15 --recalibrate
    python bench/latency_accuracy.py --out bench/latency/chunk --test-seed 16 --chunk 500

For each runtime (ONNX Runtime and PyTorch eager; each in a fresh process, since running
one runtime moves the other's eager timings), at ``--threads`` threads, batch 1, 224 px:

1. Build: a table from the canonical networks (V1, V2, V3-Large, V3-Small at width 1.0
   and the rivals scaled to 300M), ``--build`` members of the default space drawn at
   random (seed 1) and the probe ``mbnas latency build --space`` adds (MobileNetV1
   x0.718, channels off ONNX Runtime's blocking: mbnas.latency.build.PROBES), timed as
   ``mbnas latency build --method M`` times them: every part in interleaved rounds
   by the table's protocol (20 rounds of at least 5 calls since 29d2197; in context:
   each network run whole, split into its blocks' shares; isolated: each part alone),
   and those networks end to end (what calibrates the sum of parts).  Its build time and
   entry count are printed.
2. Test: ``--test`` other members of the default space (``--test-seed``, default 2;
   none of them a build member) and the canonical networks, each timed end to end as a
   deployment runs it (interleaved rounds by the table's protocol; the figure the table
   predicts: the lower quartile of their medians, or for an older table their median),
   and predicted from the table: measured blocks as measured, the others from the fit to
   the table's blocks (mbnas.latency.fit), the sum calibrated on the build's networks.
   The canonical networks were timed in the build too, so only the random members are
   unseen.  Then they are all timed again (unless ``--no-retest``): how far the two
   timings of one network are apart is the floor no prediction can be checked below on
   this machine.
3. Report: median absolute error and the share within +-10% (random members and canonical
   networks apart, and the build's own networks, whose every part the table measured: the
   error of the sum of parts itself; and what the table says of itself, each of its
   networks held out: mbnas.latency.table.Holdout), Kendall's tau of MACs against
   measured latency and of predicted against measured latency.  With the second timing,
   the random members' predictions are scored against it too: on a shared machine whose
   speed moves between timings, how much the verdict depends on the moment it met.

``--recalibrate`` times the table's own networks (those the test does not time already)
in the same interleaved rounds as the tested ones, in each timing, and scores the table
recalibrated by them too (as ``mbnas latency build --recalibrate`` does: its blocks as
built, its calibration refitted to its networks timed at the moment of the test), each
against the timing it was recalibrated at; its timings: ``{runtime}.recalibration.json``.

``--canary`` times MobileNetV2 beside everything, in the build and in the test, and holds
every figure at the speed it ran at in the build (``mbnas latency build --canary``): the
report gives the error of those held figures, and of the prediction against the networks
as timed (unheld).

Nothing else may run on the machine meanwhile (it says so when entries were noisy).  Rows:
``--out``/``{runtime}.csv`` (one per tested network), ``summary.json``, ``COMMAND``.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mbnas.arch.cost import count  # noqa: E402
from mbnas.arch.encoding import decode, encode, network_key  # noqa: E402
from mbnas.arch.seeds import SEEDS, parse_arch, seed  # noqa: E402
from mbnas.latency.build import CANARY, CHUNK, probes  # noqa: E402
from mbnas.latency.table import RUNTIMES  # noqa: E402
from mbnas.stats import kendall_tau  # noqa: E402

RESOLUTION, BATCH, CLASSES = 224, 1, 1000
CPU_RUNTIMES = ("onnxruntime", "torch")  # "both"; cuda only when asked for
FIELDS = ("set", "name", "arch", "macs", "measured_ms", "q1_ms", "q3_ms", "raw_ms",
          "raw_q1_ms", "retest_ms", "retest_q1_ms", "predicted_ms", "error", "raw_error",
          "retest_error", "retest_predicted_error", "parts", "parts_predicted",
          "recalibrated_ms", "recalibrated_error", "recalibrated_retest_error")
# With --recalibrate: each timing of the table's networks beside the test's
# ({"first"|"retest": {encoding: entry}}), what recalibrates the table at that moment.
RECALIBRATION = "{runtime}.recalibration.json"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def canonical() -> list[tuple[str, object]]:
    from mbnas.search.rivals import scaled

    nets = [(name, seed(name)) for name in SEEDS]
    rivals, _ = scaled(300_000_000, resolution=RESOLUTION, num_classes=CLASSES)
    return nets + [(r.label, r.arch) for r in rivals]


def members(count_: int, draw_seed: int, exclude: set[str]) -> list[object]:
    from mbnas.latency.build import space_members
    from mbnas.search.space import resolve_space

    space, out, seen = resolve_space(None), [], set(exclude)
    attempt = 0
    while len(out) < count_:
        (arch,) = space_members(space, 1, seed=draw_seed * 100_003 + attempt,
                                resolution=RESOLUTION, num_classes=CLASSES)
        attempt += 1
        key = network_key(encode(arch))
        if key not in seen:
            seen.add(key)
            out.append(arch)
    return out


def one_runtime(args) -> dict:
    """Build, test and report one runtime (run in its own process)."""
    from mbnas.latency.build import build_table
    from mbnas.latency.measure import Timer

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table_path = out / f"{args.one}.table.json"
    named = canonical()
    build = members(args.build, 1, set())
    built_keys = {network_key(encode(a)) for a in build} | {network_key(encode(a))
                                                            for _, a in named}
    test = members(args.test, args.test_seed, built_keys)
    start = time.monotonic()
    table = build_table([a for _, a in named] + build + probes(resolution=RESOLUTION,
                                                               num_classes=CLASSES),
                        table_path, runtime=args.one,
                        threads=args.threads, batch=BATCH, resolution=RESOLUTION,
                        method=args.method, canary=args.canary, chunk=args.chunk, log=log)
    build_s = time.monotonic() - start
    model = table.model()
    log(f"{args.one}: table of {len(table.entries)} entries in {build_s:.0f} s; fit to "
        f"{model.parts} blocks, median error {100 * model.median_error:.1f}% on them")
    reference = parse_arch(CANARY, resolution=RESOLUTION) if args.canary else None
    timer = Timer.like(table.meta, canary=reference, canary_ms=table.meta.canary_ms or None)
    tested = dict(named + [(f"member {j}", a) for j, a in enumerate(test)])
    # With --recalibrate, the table's own networks the test does not time already (the
    # canonical ones it does) run in the same interleaved rounds: what refits the
    # calibration at the moment of the test (RECALIBRATION).
    beside = {}
    if args.recalibrate:
        timed = {encode(a) for a in tested.values()}
        beside = {f"calibration {j}": decode(text)
                  for j, text in enumerate(sorted(table.networks)) if text not in timed}
    log(f"timing {len(tested)} networks end to end, in interleaved rounds"
        + (f", with the table's {len(beside)} other networks beside them" if beside else ""))
    start = time.monotonic()
    measured = timer.time_networks({**tested, **beside}, BATCH)
    raw = timer.canary(BATCH).raw if args.canary else measured
    log(f"... in {time.monotonic() - start:.0f} s")
    again = {}
    if args.retest:  # the same networks timed again: how far the measurement is from itself
        log("timing them again, to measure how far the measurement is from itself")
        start = time.monotonic()
        again = timer.time_networks({**tested, **beside}, BATCH)
        log(f"... in {time.monotonic() - start:.0f} s")
    if args.recalibrate:
        archs = {**tested, **beside}
        passes = {"first": measured, **({"retest": again} if again else {})}
        (out / RECALIBRATION.format(runtime=args.one)).write_text(json.dumps(
            {name: {encode(archs[label]): asdict(entry) for label, entry in timing.items()
                    if encode(archs[label]) in table.networks}
             for name, timing in passes.items()}, indent=1, sort_keys=True) + "\n")
    if args.canary:
        readings = timer.canary(BATCH).readings
        log(f"the reference network (built at {table.meta.canary_ms:.2f} ms) read "
            f"{min(readings):.2f}-{max(readings):.2f} ms, median "
            f"{statistics.median(readings):.2f}, while the networks were timed")
    rows = [{"set": "random" if label.startswith("member") else "canonical",
             "name": label, "arch": encode(arch), "macs": count(arch).macs,
             "measured_ms": measured[label].median_ms, "q1_ms": measured[label].q1_ms,
             "q3_ms": measured[label].q3_ms, "raw_ms": raw[label].median_ms,
             "raw_q1_ms": raw[label].q1_ms,
             "retest_ms": again[label].median_ms if again else "",
             "retest_q1_ms": again[label].q1_ms if again else ""}
            for label, arch in tested.items()]
    rows = predicted(rows, table, recalibrated(out, args.one, table))
    with open(out / f"{args.one}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return summarise(rows, args.one, build_s, table)


def recalibrated(out: Path, runtime: str, table) -> dict:
    """The table with its networks as the test's timings found them (``first``, and
    ``retest`` where they were timed twice): its blocks as built, its calibration refitted
    at the moment of each timing; {} for a run without ``--recalibrate``."""
    from mbnas.latency.table import Entry, Table

    path = out / RECALIBRATION.format(runtime=runtime)
    if not path.exists():
        return {}
    passes = json.loads(path.read_text())
    return {name: Table(table.meta, table.entries,
                        networks={text: Entry(**raw) for text, raw in timing.items()})
            for name, timing in passes.items()}


def predicted(rows: list[dict], table, recalibrated_tables: dict | None = None) -> list[dict]:
    """``rows`` with the table's predictions (the current fit: ``--report-only`` redoes
    them from the saved table and timings, measuring nothing), and with
    ``recalibrated_tables`` (:func:`recalibrated`) those of the table recalibrated at each
    timing, each against the timing it was recalibrated at."""
    recal = recalibrated_tables or {}

    q1 = table.meta.statistic == "q1"  # measured by the figure the table predicts

    def figure(r, median, quartile):
        value = r.get(quartile if q1 else median) or ""  # rows from before the column
        return float(value) if value != "" else None

    out = []
    for r in rows:
        parts = table.breakdown(decode(r["arch"]))
        ms = sum(p.ms for p in parts)
        measured = figure(r, "measured_ms", "q1_ms")
        rawms = figure(r, "raw_ms", "raw_q1_ms") or measured  # rows from before the canary
        again = figure(r, "retest_ms", "retest_q1_ms")
        out.append({**r, "predicted_ms": round(ms, 4),
                    "error": round(ms / measured - 1, 4),
                    "raw_error": round(ms / rawms - 1, 4),
                    "retest_error": round(again / measured - 1, 4) if again else "",
                    # the same prediction against the network's second timing
                    "retest_predicted_error": round(ms / again - 1, 4) if again else "",
                    "parts": len(parts) - 1,
                    "parts_predicted": sum(not p.measured for p in parts)})
        arch = decode(r["arch"])
        if "first" in recal:
            ms = recal["first"].predict(arch)
            out[-1].update(recalibrated_ms=round(ms, 4),
                           recalibrated_error=round(ms / measured - 1, 4))
        if "retest" in recal and again:
            ms = recal["retest"].predict(arch)
            out[-1].update(recalibrated_retest_error=round(ms / again - 1, 4))
    return out


def summarise(rows, runtime, build_s, table) -> dict:
    model = table.model()
    def errors(subset, field="error"):
        err = [abs(r[field]) for r in subset]
        return {"networks": len(err), "median_abs_error": round(statistics.median(err), 4),
                "within_10pct": round(sum(e <= 0.10 for e in err) / len(err), 4),
                "max_abs_error": round(max(err), 4)}

    random_rows = [r for r in rows if r["set"] == "random"]
    canon = [r for r in rows if r["set"] == "canonical"]
    # The build's own networks, every part measured: how far the sum of parts (calibrated)
    # is from a network timed end to end when no part is predicted.
    from mbnas.arch.encoding import decode

    built = [{"error": table.predict(decode(text)) / entry.ms(table.meta.statistic) - 1}
             for text, entry in table.networks.items()]
    measured = [float(r["predicted_ms"]) / (1 + float(r["error"])) for r in random_rows]
    # The canonical networks were timed end to end in the build too: how far the machine,
    # or the process, moved between the build and the test (a prediction inherits it).
    drift = [float(r["predicted_ms"]) / (1 + float(r["error"]))
             / table.networks[encode(decode(r["arch"]))].ms(table.meta.statistic) - 1
             for r in canon if encode(decode(r["arch"])) in table.networks]
    retested = [r for r in rows if r.get("retest_error") not in (None, "")]
    random_retested = [r for r in random_rows
                       if r.get("retest_predicted_error") not in (None, "")]
    recal = [r for r in random_rows if r.get("recalibrated_error") not in (None, "")]
    recal_again = [r for r in random_rows
                   if r.get("recalibrated_retest_error") not in (None, "")]
    holdout = table.holdout()  # what the table says of itself, to set beside the test
    return {"runtime": runtime, "method": table.meta.method, "threads": table.meta.threads,
            "runtime_version": table.meta.runtime_version, "cpu": table.meta.cpu,
            "build_seconds": round(build_s), "entries": len(table.entries),
            "noisy_entries": sum(e.noisy for e in table.entries.values()),
            "fit_median_error": round(model.median_error, 4),
            "networks_timed": len(table.networks),
            "calibration": {"scale": round(table.calibration().scale, 4),
                            "offset_ms": round(table.calibration().offset, 4),
                            "ms_per_million_input_elements":
                                round(1e6 * table.calibration().per_element, 4),
                            "ms_per_million_weights":
                                round(1e6 * table.calibration().per_weight, 4)},
            "canary": table.meta.canary_ms, "statistic": table.meta.statistic,
            "random": errors(random_rows), "canonical": errors(canon),
            # The same networks timed twice: the floor no prediction can be checked below.
            **({"retest": errors(retested, "retest_error")} if retested else {}),
            # The prediction scored against the second timing instead: how much the
            # verdict depends on the moment of the machine the test met.
            **({"random_against_retest": errors(random_retested, "retest_predicted_error")}
               if random_retested else {}),
            # The table recalibrated at the moment of each timing (--recalibrate): its
            # blocks as built, its networks timed in the same rounds as the test's.
            **({"random_recalibrated": errors(recal, "recalibrated_error")}
               if recal else {}),
            **({"random_recalibrated_retest": errors(recal_again,
                                                     "recalibrated_retest_error")}
               if recal_again else {}),
            "random_unheld": errors(random_rows, "raw_error"),
            "build_networks_all_parts_measured": errors(built),
            **({"holdout": {"networks": holdout.networks,
                            "median_abs_error": round(holdout.median_error, 4),
                            "within_10pct": round(holdout.within_10, 4),
                            "median_signed_error": round(holdout.median_signed, 4)}}
               if holdout else {}),
            "all": errors(rows),
            **({"drift_build_to_test": round(statistics.median(drift), 4)} if drift else {}),
            "kendall_tau_macs_vs_measured": round(kendall_tau(
                [float(r["macs"]) for r in random_rows], measured), 3),
            "kendall_tau_predicted_vs_measured": round(kendall_tau(
                [r["predicted_ms"] for r in random_rows], measured), 3),
            "fit_parts": model.parts,
            "parts_predicted_share": round(sum(r["parts_predicted"] for r in random_rows)
                                           / sum(r["parts"] for r in random_rows), 3)}


def report(summaries: list[dict]) -> None:
    print("| runtime | build | entries | random members: median error, within ±10% "
          "| canonical: median error, within ±10% | build networks, all parts measured "
          "| τ MACs vs latency | τ predicted vs measured |")
    print("|---|---|---|---|---|---|---|---|")
    for s in summaries:
        r, c = s["random"], s["canonical"]
        b = s["build_networks_all_parts_measured"]
        held = ""
        if s.get("canary"):
            u = s["random_unheld"]
            held = (f", held at a reference network's speed (unheld: "
                    f"{100 * u['median_abs_error']:.1f}%, {100 * u['within_10pct']:.0f}%)")
        if s.get("retest"):
            t = s["retest"]
            held += (f"; timed twice, the networks were {100 * t['median_abs_error']:.1f}% "
                     f"apart, {100 * t['within_10pct']:.0f}% within ±10%")
        if s.get("random_against_retest"):
            a = s["random_against_retest"]
            held += (f"; the random members' predictions against their second timing: "
                     f"{100 * a['median_abs_error']:.1f}%, {100 * a['within_10pct']:.0f}%")
        if s.get("random_recalibrated"):
            a = s["random_recalibrated"]
            held += (f"; recalibrated at the test (the table's networks timed in its "
                     f"rounds): {100 * a['median_abs_error']:.1f}%, "
                     f"{100 * a['within_10pct']:.0f}%")
            if s.get("random_recalibrated_retest"):
                a = s["random_recalibrated_retest"]
                held += (f", and at the second timing against it: "
                         f"{100 * a['median_abs_error']:.1f}%, "
                         f"{100 * a['within_10pct']:.0f}%")
        if "drift_build_to_test" in s:
            held += (f"; the canonical networks ran {100 * s['drift_build_to_test']:+.1f}% "
                     "in the test against the build")
        if s.get("holdout"):
            h = s["holdout"]
            held += (f"; the table's own networks, each held out: "
                     f"{100 * h['median_abs_error']:.1f}%, {100 * h['within_10pct']:.0f}%")
        stat = "lower quartile" if s.get("statistic") == "q1" else "median"
        print(f"| {s['runtime']} {s['runtime_version']}, {s['threads']} thread(s), "
              f"blocks {'in context' if s['method'] == 'context' else 'alone'}, the {stat} "
              f"of the rounds{held} "
              f"| {s['build_seconds'] // 60} min {s['build_seconds'] % 60} s "
              f"| {s['entries']} ({s['noisy_entries']} noisy) "
              f"| {100 * r['median_abs_error']:.1f}%, {100 * r['within_10pct']:.0f}% "
              f"of {r['networks']} | {100 * c['median_abs_error']:.1f}%, "
              f"{100 * c['within_10pct']:.0f}% of {c['networks']} "
              f"| {100 * b['median_abs_error']:.1f}%, {100 * b['within_10pct']:.0f}% "
              f"of {b['networks']} | {s['kendall_tau_macs_vs_measured']:.2f} "
              f"| {s['kendall_tau_predicted_vs_measured']:.2f} |")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="bench/latency/default")
    p.add_argument("--runtime", choices=(*RUNTIMES, "both"), default="both")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--build", type=int, default=30, help="space members the table is "
                   "built from (default 30)")
    p.add_argument("--test", type=int, default=50, help="other members tested (default 50)")
    p.add_argument("--test-seed", type=int, default=2, help="the seed they are drawn with "
                   "(default 2; another seed draws members nobody has looked at)")
    p.add_argument("--method", choices=("context", "isolated"), default="isolated",
                   help="how the table times its blocks (mbnas latency build --method)")
    p.add_argument("--canary", action="store_true", help="time a reference network beside "
                   "everything and hold every figure at its speed (mbnas latency build "
                   "--canary); the report gives the unheld error too")
    p.add_argument("--no-retest", dest="retest", action="store_false",
                   help="time the tested networks once, not twice (the second timing says "
                   "how far the measurement is from itself)")
    p.add_argument("--chunk", type=int, default=CHUNK, help="parts the build times in "
                   f"the same rounds (mbnas latency build --chunk; default {CHUNK})")
    p.add_argument("--recalibrate", action="store_true", help="time the table's own "
                   "networks in the same rounds as the tested ones, and score the table "
                   "recalibrated by those timings too (mbnas latency build --recalibrate): "
                   "its blocks as built, its calibration at the test's moment")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--statistic", choices=("q1", "median"), help="with --report-only: "
                   "predict and measure by this figure, whatever the table records")
    p.add_argument("--one", choices=RUNTIMES, help=argparse.SUPPRESS)
    args = p.parse_args()
    out = Path(args.out)
    if args.one:
        summary = one_runtime(args)
        (out / f"{args.one}.summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        return 0
    runtimes = CPU_RUNTIMES if args.runtime == "both" else (args.runtime,)
    if args.report_only and not any((out / f"{r}.csv").exists() for r in runtimes):
        print(f"latency_accuracy: --report-only: {out} holds no run of this bench (no "
              f"{' or '.join(f'{r}.csv' for r in runtimes)}); give --out a folder it "
              "wrote", file=sys.stderr)
        return 2
    if not args.report_only:
        out.mkdir(parents=True, exist_ok=True)
        (out / "COMMAND").write_text("python " + shlex.join(["bench/latency_accuracy.py",
                                                             *sys.argv[1:]]) + "\n")
        for runtime in runtimes:
            cmd = [sys.executable, __file__, "--one", runtime, "--out", str(out),
                   "--threads", str(args.threads), "--build", str(args.build),
                   "--test", str(args.test), "--test-seed", str(args.test_seed),
                   "--method", args.method,
                   *(["--canary"] if args.canary else []),
                   *(["--recalibrate"] if args.recalibrate else []),
                   "--chunk", str(args.chunk),
                   *([] if args.retest else ["--no-retest"])]
            subprocess.run(cmd, check=True)  # a fresh process per runtime
    summaries = []
    for runtime in runtimes:  # predictions redone from the saved table and timings
        if not (out / f"{runtime}.csv").exists():
            continue
        from mbnas.latency.table import load_table

        table = load_table(out / f"{runtime}.table.json")
        if args.statistic:
            table.meta = replace(table.meta, statistic=args.statistic)
            table.stored_holdout = None  # kept for the table's own statistic: redone
        with open(out / f"{runtime}.csv", newline="") as f:
            rows = predicted(list(csv.DictReader(f)), table,
                             recalibrated(out, runtime, table))
        build_s = json.loads((out / f"{runtime}.summary.json").read_text())["build_seconds"]
        summaries.append(summarise(rows, runtime, build_s, table))
    if args.statistic and summaries:  # a re-report beside the run's own summary
        (out / f"summary.{args.statistic}.json").write_text(json.dumps(summaries, indent=1)
                                                           + "\n")
    elif summaries:
        (out / "summary.json").write_text(json.dumps(summaries, indent=1) + "\n")
    report(summaries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
