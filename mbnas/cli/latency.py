"""``mbnas latency``: measure a latency table on the machine it runs on."""

from __future__ import annotations

import argparse
import sys

from mbnas.cli._args import positive_int


def _cmd_build(args: argparse.Namespace) -> int:
    from mbnas.arch.seeds import parse_arch
    from mbnas.errors import MbnasError
    from mbnas.latency.build import PROBES, build_table, probes, space_members

    if not args.arch and not args.space and not args.recalibrate:
        raise MbnasError("latency build: give architectures, --space FILE, or both (or "
                         "--recalibrate to time a table's networks again)")
    _settings(args)
    archs = [parse_arch(text, resolution=args.resolution, num_classes=args.num_classes)
             for text in args.arch]
    if args.space:
        from mbnas.search.space import resolve_space

        archs += space_members(resolve_space(args.space), args.sample, seed=args.seed,
                               resolution=args.resolution, num_classes=args.num_classes)
        archs += probes(resolution=args.resolution, num_classes=args.num_classes)
        print("latency build: also timing " + ", ".join(f"{n} x{w}" for n, w in PROBES)
              + ", whose channel counts are not multiples of 4 (ONNX Runtime runs such "
              "convolutions 1.7x slower per multiply-add): what prices the V1 rival a "
              "search scales to its budget", file=sys.stderr, flush=True)
    table = build_table(archs, args.out, runtime=args.runtime, threads=args.threads,
                        batch=args.batch, resolution=args.resolution, warmup=args.warmup,
                        repeats=args.repeats, rounds=args.rounds, method=args.method,
                        canary=args.canary, recalibrate=args.recalibrate, chunk=args.chunk,
                        log=lambda m: print(m, file=sys.stderr, flush=True))
    print(f"{args.out}: {len(table.entries)} entries ({table.describe()})")
    return 0


# What a build measures by when not told: a table's own settings where it adds to one
# (so that `--recalibrate --out TABLE` needs nothing else), else these.
DEFAULTS = {"runtime": "onnxruntime", "threads": 1, "batch": 1, "resolution": 224,
            "method": "isolated"}


def _settings(args: argparse.Namespace) -> None:
    """Fill the settings not given: from the table at ``--out`` where one is, else
    :data:`DEFAULTS` (a setting given that differs from the table's is refused later, in
    one line)."""
    from pathlib import Path

    from mbnas.latency.table import load_table

    meta = load_table(args.out).meta if Path(args.out).exists() else None
    for name, default in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, getattr(meta, name) if meta else default)
    if meta is not None and args.recalibrate and meta.canary:
        args.canary = True  # a table held at a reference network's speed stays held


def add_parser(sub) -> None:
    from mbnas.arch.spec import NUM_CLASSES
    from mbnas.latency.build import CHUNK
    from mbnas.latency.table import METHODS, REPEATS, ROUNDS, RUNTIMES

    p = sub.add_parser("latency", help="measure a latency table on this machine")
    commands = p.add_subparsers(dest="latency_command", metavar="SUBCOMMAND")
    commands.required = True
    b = commands.add_parser("build", help="time every block the networks need",
                            description="Time, on this machine, every block (as the runtime "
                                        "runs it: conv + BN + activation, SE, shortcut) and "
                                        "the classifier of the given networks, and add them "
                                        "to TABLE (a rerun resumes). Run it on the device "
                                        "you deploy on, with nothing else running.")
    b.add_argument("arch", nargs="*", metavar="ARCH",
                   help="seed names, spec files or encoded strings")
    b.add_argument("--space", help="also draw --sample members of this search space (and "
                                   "time MobileNetV1 x0.718, whose channels price the V1 "
                                   "rival of a search)")
    b.add_argument("--sample", type=positive_int, default=50,
                   help="members drawn from --space (default 50)")
    b.add_argument("--seed", type=int, default=0, help="of the draw (default 0)")
    b.add_argument("--runtime", choices=RUNTIMES, default=None,
                   help="onnxruntime (default, or the table's own), torch (eager) or cuda")
    b.add_argument("--threads", type=positive_int, default=None,
                   help="intra-op threads, fixed and recorded (default 1, or the table's)")
    b.add_argument("--batch", type=positive_int, default=None,
                   help="default 1, or the table's")
    b.add_argument("--resolution", type=positive_int, default=None,
                   help="default 224, or the table's")
    b.add_argument("--num-classes", type=positive_int, default=NUM_CLASSES)
    b.add_argument("--warmup", type=positive_int, default=10)
    b.add_argument("--repeats", type=positive_int, default=None,
                   help=f"timed calls per entry and round, at least (default {REPEATS}, "
                        "or the table's own when adding to one)")
    b.add_argument("--rounds", type=positive_int, default=None,
                   help="interleaved rounds per entry; the entry is the lower quartile of "
                        f"the rounds' medians (default {ROUNDS}, or the table's own)")
    b.add_argument("--method", choices=METHODS, default=None,
                   help="isolated (default): each block alone, as a network of its own; "
                        "context: each block inside the networks run whole, its share of "
                        "each run (no better on this project's noisy machine yet: "
                        "docs/latency.md)")
    b.add_argument("--canary", action="store_true",
                   help="time MobileNetV2 between the blocks and hold every entry at the "
                        "speed it ran at in the table's first build: for a shared machine, "
                        "whose speed moves from one second to the next (docs/latency.md)")
    b.add_argument("--chunk", type=positive_int, default=CHUNK,
                   help=f"parts timed in the same interleaved rounds, and saved, together "
                        f"(default {CHUNK}; networks: a quarter): more spreads each part's "
                        "rounds over more of the build, for a machine whose speed moves by "
                        "minutes; its rounds are kept as they end (TABLE.rounds), so a "
                        "killed build goes on from the last one")
    b.add_argument("--recalibrate", action="store_true",
                   help="then time the table's networks end to end again, all in the same "
                        "rounds, and refit its calibration to them (its blocks stay): for a "
                        "machine whose speed has moved since the table was built "
                        "(docs/latency.md)")
    b.add_argument("--out", required=True, metavar="TABLE", help="the table file (JSON)")
    b.set_defaults(func=_cmd_build)
