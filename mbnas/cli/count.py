"""``mbnas count``: an architecture's multiply-adds and parameters, priced analytically."""

from __future__ import annotations

import argparse
import json

from mbnas.cli._args import add_arch_arguments, arch_from_args, budget_count
from mbnas.errors import MbnasError


def _cmd_count(args: argparse.Namespace) -> int:
    from mbnas.arch.cost import count, layer_costs
    from mbnas.arch.encoding import encode
    from mbnas.cli.report import stage_table

    arch = arch_from_args(args)
    if args.fit is not None:
        from mbnas.arch.cost import widest_within
        from mbnas.units import format_count

        if args.width is not None:
            raise MbnasError("--fit and --width both set the width; give one of them")
        fitted = widest_within(arch, args.fit)
        if fitted is None:
            raise MbnasError(f"--fit: no width of this network fits {format_count(args.fit)} "
                             f"MACs (it costs {format_count(count(arch).macs)} at width "
                             f"{arch.width:g}); raise the budget or lower --resolution")
        arch = fitted
    total = count(arch)
    latency = None
    if args.latency_table:
        from mbnas.cli.report import latency_by_layer
        from mbnas.latency.metric import use_table

        table = use_table(args.latency_table)
        breakdown = table.breakdown(arch)
        latency = latency_by_layer(breakdown)
        predicted = sum(not part.measured for part in breakdown)
        holdout = table.holdout()
    if args.json:
        print(json.dumps({
            "arch": encode(arch),
            "macs": total.macs,
            "params": total.params,
            "weights": total.weights,
            "width": arch.width,
            "resolution": arch.resolution,
            "num_classes": arch.num_classes,
            "convention": "MACs: convolutions + classifier, one per multiply-add",
            **({"fit": args.fit} if args.fit is not None else {}),
            **({"latency_ms": round(sum(latency.values()), 4),
                "latency_table": str(args.latency_table),
                "latency_measured_on": table.describe(),
                "latency_parts_predicted": predicted,
                # How close the table comes to networks it never saw (null: too few
                # networks timed end to end to say).
                "latency_holdout": holdout and {
                    "networks": holdout.networks,
                    "median_error": round(holdout.median_error, 4),
                    "within_10": round(holdout.within_10, 4),
                    "median_signed_error": round(holdout.median_signed, 4)}}
               if latency is not None else {}),
        }))
    else:
        print(stage_table(arch, layer_costs(arch), latency))
        if latency is not None:
            print(f"Latency predicted from {args.latency_table} ({table.describe()}): its "
                  "blocks' figures, each less the per-call cost, plus one call, calibrated on "
                  f"the networks the table timed end to end ({table.calibration().describe()}).")
            if predicted:
                model = table.model()
                print(f"{predicted} of {len(breakdown) - 1} parts are not in the table and "
                      f"were predicted from its {model.parts} measured ones (median error "
                      f"{100 * model.median_error:.1f}% on those"
                      + (f"; channels padded to multiples of {model.channel_block}, as the "
                         "runtime's blocked kernels run them, which fits its blocks best"
                         if model.channel_block > 1 else "") + ").")
            print("How close such a prediction comes: " + (
                f"{holdout.describe()}." if holdout else
                f"the table timed {len(table.networks)} network(s) end to end, too few to "
                "say (give `mbnas latency build` several networks, or --space)."))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("count", help="multiply-adds and parameters of an architecture",
                       description="Price an architecture analytically: multiply-adds "
                                   "(convolutions + classifier, the papers' convention), "
                                   "PyTorch parameters and weights.")
    add_arch_arguments(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--fit", type=budget_count, metavar="BUDGET",
                   help="scale the width to the largest whose MACs fit BUDGET (e.g. 300M; "
                        "channels rounded by the network's own rule): the MobileNet a "
                        "search at that budget must beat")
    p.add_argument("--latency-table", metavar="TABLE",
                   help="also predict the latency from a table made by `mbnas latency build` "
                        "(JSON: latency_ms; the table view: per layer)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return _cmd_count(args)
