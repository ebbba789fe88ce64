"""``mbnas baseline``: the MobileNets at their published widths under the proxy protocol."""

from __future__ import annotations

import argparse
import sys

from mbnas.cli._args import (
    EpochProgress,
    add_protocol_arguments,
    canonical_models,
    protocol_from_args,
)


def _cmd_baseline(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mbnas.training.baseline import markdown_table, run_baseline

    protocol = protocol_from_args(args)
    models = canonical_models(args.models)
    out = Path(args.out or f"runs/baselines/{protocol.dataset}")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    def progress(i: int):
        bar = EpochProgress(protocol.train.epochs)
        return bar.step

    table, taus = run_baseline(protocol, out_dir=out, models=models, log=log,
                               progress=progress)
    print(markdown_table(table))
    print(f"\nproxy fidelity: Kendall's tau vs ImageNet top-1 = {taus['val']:.3f} (val), "
          f"{taus['test']:.3f} (test); saved {out}/baseline.csv and baseline.md")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("baseline", help="MobileNet V1/V2/V3 at published widths under the proxy",
                       description="Train V1 (1.0, 0.75, 0.5, 0.25), V2 (1.4, 1.0, 0.75, "
                                   "0.5, 0.35) and V3 (Large, Small) under the proxy protocol "
                                   "and report them beside "
                                   "the papers' figures, with the proxy's fidelity (Kendall's "
                                   "tau against ImageNet top-1).")
    add_protocol_arguments(p)
    p.add_argument("--out", help="output folder (default runs/baselines/<dataset>)")
    p.add_argument("--models", help="a subset, e.g. mobilenet_v2@1,mobilenet_v1@0.5")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return _cmd_baseline(args)
