"""``mbnas search``: search the space for the best network within a budget."""

from __future__ import annotations

import argparse
import sys

from mbnas.cli._args import (
    add_protocol_arguments,
    budget_limit,
    budget_of,
    fraction,
    int_at_least,
    nonneg_int,
    positive_float,
    positive_int,
    protocol_from_args,
)


def _faults(text: str) -> dict[int, str]:
    """``1:raise,2:nan``: the Nth trial issued gets that fault (for tests)."""
    out = {}
    for item in filter(None, text.split(",")):
        number, _, fault = item.partition(":")
        if not number.isdigit() or fault not in ("raise", "nan", "oom", "kill", "slow",
                                                  "slower"):
            raise argparse.ArgumentTypeError(
                f"{item!r}: write N:raise|nan|oom|kill|slow|slower")
        out[int(number)] = fault
    return out


def _references(text: str) -> tuple[str, ...]:
    from mbnas.arch.seeds import SEEDS

    names = tuple(n for n in text.split(",") if n and n != "none")
    for name in names:
        if name not in SEEDS:
            raise argparse.ArgumentTypeError(f"{name!r} is not a seed; choose from "
                                             f"{', '.join(SEEDS)} or none")
    return names


def _summary_table(outcome) -> str:
    """The winner, the MobileNets scaled to the budget (its rivals) with the trainings that
    measured them, and any named references, under the search's proxy protocol."""
    from mbnas.units import format_count

    rows = []  # label, proxy accuracy text, MACs, params, arch
    if outcome.winner:
        confirmed = outcome.confirmation and outcome.confirmation["verdict"].get("winner")
        w = outcome.winner
        acc = f"{100 * w.val_acc:.2f}%" if w.complete else w.state.value
        rows.append((f"winner (confirmed): trial {w.number}" if confirmed
                     else f"winner (proxy): trial {w.number}", acc, w.macs, w.params, w.arch))
    rivals = {r["label"] for r in outcome.rivals}
    for r in outcome.rivals:
        acc = ("not trained" if r["proxy_val_acc"] is None
               else f"{100 * r['proxy_val_acc']:.2f}%")
        how = ("" if not r["trained_as"] else " (reference)"
               if r["trained_as"].startswith("reference") else f" ({r['trained_as']})")
        rows.append((f"rival {r['label']}{how}", acc, r["macs"], r["params"], r["arch"]))
    for r in outcome.references:
        if r.name not in rivals:
            acc = f"{100 * r.val_acc:.2f}%" if r.complete else r.state.value
            rows.append((f"reference {r.name}", acc, r.macs, r.params, r.arch))
    if not rows:
        return ""
    width = max(len(label) for label, *_ in rows) + 2
    lines = [f"{'':<{width}}{'proxy val acc':>14}{'MACs':>10}{'params':>9}  arch"]
    lines += [f"{label:<{width}}{acc:>14}{format_count(macs):>10}"
              f"{format_count(params, 2):>9}  {arch}"
              for label, acc, macs, params, arch in rows]
    if outcome.rivals:
        lines.append("rivals: V1, V2 and V3-Large each at the largest width that fits the "
                     "budget (every limit of it), at the search's resolution")
    lines.append(outcome.proxy_noise)
    return "\n".join(lines)


def _latency_table(args: argparse.Namespace) -> str | None:
    """Load ``--latency-table`` (registering the latency metric), checked against the
    runtime and resolution the search asks for; a latency budget or objective without
    one is refused."""
    from mbnas.errors import MbnasError

    wants = [n for n, _ in args.budget if n == "latency"] or (
        ["latency"] if args.pareto_metric == "latency" else [])
    if not args.latency_table:
        if wants:
            raise MbnasError("a latency budget or --pareto-metric latency needs "
                             "--latency-table TABLE (made by `mbnas latency build` on the "
                             "device you deploy on)")
        return None
    from mbnas.latency.metric import use_table

    use_table(args.latency_table, runtime=args.latency_runtime,
              resolution=args.resolution or 224)
    return str(args.latency_table)


def _cmd_search(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mbnas.cli.report import confirmation_table, holdout_note
    from mbnas.search.confirm import ConfirmSettings
    from mbnas.search.run import run_search
    from mbnas.search.settings import SearchSettings

    latency_table = _latency_table(args)
    settings = SearchSettings(
        budget=budget_of(args.budget), pareto_metric=args.pareto_metric,
        latency_table=latency_table,
        name=args.name or "", space=args.space,
        trials=args.trials,
        objective=args.objective, sampler=args.sampler, startup=args.startup,
        resolution=args.resolution,
        num_classes=args.num_classes or SearchSettings.num_classes,
        protocol=protocol_from_args(args),
        concurrency=args.concurrency, cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial, address=args.address,
        early_stopping=args.early_stopping, runs_dir=Path(args.runs_dir),
        faults=args.inject_faults or {}, references=args.references,
        keep_weights=args.keep_weights,
        confirm=ConfirmSettings(top=0 if args.no_confirm else args.confirm_top,
                                seeds=args.confirm_seeds, epochs=args.confirm_epochs,
                                subset=args.confirm_subset))

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    outcome = run_search(settings, log=log)
    print(f"\nresults: {outcome.run_dir}/ (trials.csv, best.json; "
          f"`mbnas show {outcome.run_dir}` for the table and plot)")
    print(_summary_table(outcome))
    if outcome.winner_latency:
        w = outcome.winner_latency
        stat = "lower quartile" if w.get("statistic") == "q1" else "median"
        if w.get("measured_ms") is None:
            print(f"winner's latency: {w['predicted_ms']:.2f} ms predicted ({w['measured_on']}"
                  f"{holdout_note(w)}); not measured: {w['not_measured']}")
        else:
            print(f"winner's latency: {w['predicted_ms']:.2f} ms predicted, "
                  f"{w['measured_ms']:.2f} ms measured end to end here (the {stat} of its "
                  f"rounds' medians, as the table holds its parts; {w['runs']} runs, "
                  f"quartiles {w['q1_ms']:.2f}-{w['q3_ms']:.2f}; {w['measured_on']}"
                  f"{holdout_note(w)})")
    if outcome.confirmation:
        print("\n" + confirmation_table(outcome.confirmation))
    if outcome.near_chance:
        print(f"mbnas: error: {outcome.near_chance}", file=sys.stderr)
        return 1
    counted = [r for r in outcome.rows if not r.is_reference and r.state.counted]
    if outcome.winner is None:
        failed = [r for r in counted if r.state.failed]
        if counted and len(failed) == len(counted):
            first = failed[0].error or failed[0].state.value
            print(f"mbnas: error: every search trial failed (first: {first}); see "
                  f"{outcome.run_dir}/trials.csv", file=sys.stderr)
            return 1
        print("mbnas: no search trial finished within budget yet", file=sys.stderr)
        return 1
    return 0


def add_parser(sub) -> None:
    from mbnas.arch.seeds import SEEDS
    from mbnas.search.confirm import CONFIRM_MIN_SUBSET, ConfirmSettings
    from mbnas.search.settings import (
        KEEP_WEIGHTS,
        OBJECTIVES,
        SAMPLERS,
        STARTUPS,
        SearchSettings,
    )
    from mbnas.training.protocol import SEARCH_SUBSET

    p = sub.add_parser("search", help="search the space for the best network within a budget",
                       description="Optuna proposes architectures within a multiply-add "
                                   "budget; Ray Tune trains their proxies in parallel. "
                                   "Rerunning the same command resumes the run.")
    p.add_argument("--budget", type=budget_limit, required=True, action="append",
                   help="MACs (papers' convention) on the target spec: 300M, 0.3G, 300e6; "
                        "or METRIC=AMOUNT for another cost (params=3.5M); repeat it for "
                        "several limits at once")
    p.add_argument("--name", help="run name under --runs-dir (default search-<budget>)")
    p.add_argument("--runs-dir", default="runs", help="where runs live (default runs/)")
    p.add_argument("--space", help="search space: a .yaml file or a name under "
                                   "search_spaces/ (default mobilenet)")
    p.add_argument("--trials", type=positive_int, default=SearchSettings.trials,
                   help="total search trials, counting those of earlier runs "
                        f"(default {SearchSettings.trials})")
    p.add_argument("--objective", choices=OBJECTIVES, default=SearchSettings.objective,
                   help="accuracy under the budget (default), or pareto: accuracy and MACs")
    p.add_argument("--latency-table", metavar="TABLE",
                   help="price predicted latency from this table (`mbnas latency build`): "
                        "a budget in ms (--budget 15ms), --pareto-metric latency, and a "
                        "latency column beside MACs")
    p.add_argument("--latency-runtime", choices=("onnxruntime", "torch", "cuda"),
                   default="onnxruntime",
                   help="the runtime the table must have been measured with (default "
                        "onnxruntime)")
    p.add_argument("--pareto-metric", default=SearchSettings.pareto_metric, metavar="METRIC",
                   help="the cost --objective pareto trades accuracy against (default "
                        f"{SearchSettings.pareto_metric}; params, or a registered metric)")
    p.add_argument("--sampler", choices=SAMPLERS, default=SearchSettings.sampler,
                   help=f"Optuna sampler (default {SearchSettings.sampler})")
    p.add_argument("--startup", choices=STARTUPS, default=SearchSettings.startup,
                   help="where the sampler's first 8 trials (the seeds among them) come "
                        "from: random members of the space (default), or near-seeds, the "
                        "seed candidates with 2 choices each drawn again")
    p.add_argument("--resolution", type=positive_int,
                   help="target input resolution for pricing (default: the space's, 224)")
    p.add_argument("--num-classes", type=positive_int,
                   help=f"target classes for pricing (default {SearchSettings.num_classes})")
    p.add_argument("--concurrency", type=positive_int, default=SearchSettings.concurrency,
                   help=f"trials at a time (default {SearchSettings.concurrency})")
    p.add_argument("--cpus-per-trial", type=positive_float,
                   help="CPUs per trial (default: all CPUs / concurrency)")
    p.add_argument("--gpus-per-trial", type=fraction,
                   help="GPUs per trial, fractions allowed (default 1 where GPUs exist)")
    p.add_argument("--address", help="join a Ray cluster: auto, host:port or ray://host:port")
    p.add_argument("--early-stopping", action=argparse.BooleanOptionalAction,
                   default=SearchSettings.early_stopping,
                   help="stop trials that rank in the lower half after epoch 1 or 2 (ASHA). "
                        "Off by default: on the default 3-epoch proxy the early epochs rank "
                        "candidates too poorly (docs/proxy-protocol.md, 'Early stopping')")
    p.add_argument("--references", type=_references, default=None,
                   help="networks trained beside the search as references, under its "
                        "protocol (default: the rivals V1, V2 and V3-Large scaled to the "
                        "budget that are not seed candidates already; named ones, from "
                        f"{','.join(SEEDS)}, at width 1.0; 'none' for none)")
    p.add_argument("--keep-weights", default=KEEP_WEIGHTS, metavar="POLICY",
                   help="which finished trials keep their trained weights: all, none, or "
                        f"best:K, the K most accurate plus seeds and references (default "
                        f"{KEEP_WEIGHTS})")
    c = p.add_argument_group("confirmation (after the search: the best candidates and the "
                             "rivals, V1, V2 and V3-Large scaled to the budget, retrained at "
                             "several seeds)")
    c.add_argument("--confirm-top", type=nonneg_int, default=ConfirmSettings.top,
                   help=f"search candidates to confirm (default {ConfirmSettings.top})")
    c.add_argument("--confirm-seeds", type=int_at_least(2), default=ConfirmSettings.seeds,
                   help=f"seeds per architecture (default {ConfirmSettings.seeds})")
    c.add_argument("--confirm-epochs", type=positive_int,
                   help=f"epochs (default {ConfirmSettings.epoch_factor:.3g}x --epochs, "
                        "rounded up: 4 for the default 3)")
    c.add_argument("--confirm-subset", type=positive_int,
                   help=f"training images (default: the search's --subset, and at least "
                        f"{CONFIRM_MIN_SUBSET:,})")
    c.add_argument("--no-confirm", action="store_true",
                   help="crown the best proxy accuracy without confirming it")
    p.add_argument("--inject-faults", type=_faults, help=argparse.SUPPRESS)
    add_protocol_arguments(p, subset=SEARCH_SUBSET)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return _cmd_search(args)
