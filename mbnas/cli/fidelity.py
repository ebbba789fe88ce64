"""``mbnas fidelity``: how far a proxy protocol can be trusted."""

from __future__ import annotations

import argparse
import sys

from mbnas.cli._args import (
    EpochProgress,
    add_protocol_arguments,
    budget_count,
    canonical_models,
    nonneg_int,
    positive_int,
    protocol_from_args,
)
from mbnas.errors import MbnasError


def _seeds(text: str) -> tuple[int, ...]:
    parse = nonneg_int
    seeds = tuple(parse(t.strip()) for t in text.split(",") if t.strip())
    if not seeds or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"{text!r}: give distinct seeds, e.g. 0,1")
    return seeds


def _cmd_fidelity(args: argparse.Namespace) -> int:
    import shlex
    from pathlib import Path

    from mbnas.training import fidelity as fid

    protocol = protocol_from_args(args)
    if args.seed:
        raise MbnasError("--seed: fidelity trains at every seed of --seeds; use --seeds")
    models = canonical_models(args.models, allow_none=True)
    if args.reference == "none":
        reference = None
    else:
        reference = Path(args.reference) if args.reference else fid.reference_path(
            protocol.dataset)
        if args.reference and not reference.is_file():
            raise MbnasError(f"--reference: {args.reference!r} is not a file (or write none)")
        if not reference.is_file():
            reference = None
    from mbnas.search.space import resolve_space

    panel = fid.canonical_members(models)
    if args.panel_size:
        panel += fid.space_members(resolve_space(args.space), budget=args.panel_budget,
                                   size=args.panel_size, band=fid.PANEL_BAND,
                                   seed=args.panel_seed)
    if not panel:
        raise MbnasError("the panel is empty: give --models or a --panel-size above 0")
    reference_rows = fid.read_rows(reference) if reference else None
    t = protocol.train
    out = Path(args.out or f"runs/fidelity/{protocol.dataset}-{protocol.subset or 'all'}"
                           f"x{t.epochs}")
    command = "mbnas " + shlex.join(sys.argv[1:])
    fid.check_out_dir(out, protocol)
    from mbnas.training.proxy import load_data
    from mbnas.training.trainer import pick_device

    pick_device(protocol.train.device)

    data = load_data(protocol)  # a missing data set stops us before any output

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log(f"panel: {len(panel)} architectures x {len(args.seeds)} seed(s) on {data.name} "
        f"({len(data.train)} train / {len(data.val)} val, {data.size}px, {t.epochs} "
        f"epochs); results in {out}/")
    rows = fid.run_trainings(panel, protocol, args.seeds, out_dir=out, command=command,
                             jobs=args.jobs, test=args.test, log=log,
                             progress=lambda: EpochProgress(t.epochs).step)
    report = fid.summarise(rows, reference_rows)
    fid.write_report(report, out, protocol=protocol, command=command,
                     reference_command=fid.reference_command(reference) if reference else "")
    if args.save_reference:  # every training in the folder: a reference grows run by run
        fid.save_reference(fid.read_rows(out / "fidelity.csv"), Path(args.save_reference),
                           command=command, protocol=protocol)
    import pandas as pd

    from mbnas.training.baseline import markdown_table

    shown = pd.DataFrame([{k: v for k, v in r.items() if k != "arch"} for r in report.table])
    print(markdown_table(shown) + "\n")
    print("\n".join(fid.figures_lines(report.figures)))
    if reference:
        print(f"reference: {reference} (made by: {fid.reference_command(reference)})")
    print(f"saved {out}/fidelity.csv, summary.csv, fidelity.md and figures.json")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("fidelity", help="how far a proxy protocol can be trusted",
                       description="Train a panel (the canonical networks and members of "
                                   "the space near a budget) at several seeds under the "
                                   "protocol; report the seed spread, Kendall's tau against "
                                   "a higher-fidelity reference and against ImageNet top-1. "
                                   "Rerunning the same command skips finished trainings.")
    add_protocol_arguments(p)
    p.add_argument("--seeds", type=_seeds, default=(0, 1),
                   help="seeds to train each architecture at (default 0,1)")
    p.add_argument("--models", help="canonical networks, e.g. mobilenet_v2@1,mobilenet_v1@0.5 "
                                    "or none (default: all of mbnas baseline's)")
    p.add_argument("--panel-budget", type=budget_count, default=300_000_000,
                   help="space members are drawn within 15%% below this many MACs "
                        "(default 300M)")
    p.add_argument("--panel-size", type=nonneg_int, default=8,
                   help="members of the space in the panel (default 8)")
    p.add_argument("--panel-seed", type=nonneg_int, default=0,
                   help="seed of the draw of space members (default 0)")
    p.add_argument("--space", help="search space: a .yaml file or a name under "
                                   "search_spaces/ (default mobilenet)")
    p.add_argument("--reference", help="reference file (default: the one shipped for the "
                                       "data set, if any; none for none)")
    p.add_argument("--save-reference", metavar="FILE",
                   help="also write every training in --out (this command's and those "
                        "of earlier commands into the same folder) as a reference file")
    p.add_argument("--jobs", type=positive_int, default=1,
                   help="trainings at a time, in worker processes (default 1); "
                        "set --threads too")
    p.add_argument("--test", action="store_true", help="also measure test accuracy")
    p.add_argument("--out", help="output folder (default runs/fidelity/DATASET-SUBSETxEPOCHS)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return _cmd_fidelity(args)
