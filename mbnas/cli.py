"""The ``mbnas`` command line.

Each subcommand imports what it needs when it runs, so ``mbnas count`` stays
free of torch, Ray, Optuna and pandas.  Bad input (an :class:`MbnasError` or an
argument error) prints one line on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from mbnas.errors import MbnasError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, not the usage block."""

    def error(self, message: str):  # noqa: D401 - argparse's signature
        raise MbnasError(f"{self.prog}: {message} (see {self.prog} --help)")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def add_arch_arguments(parser: argparse.ArgumentParser) -> None:
    """ARCH and its modifiers, the same for every command that takes an architecture."""
    parser.add_argument("arch", metavar="ARCH",
                        help="seed name (mobilenet_v1, mobilenet_v2), spec file (.yaml/.json) "
                             "or encoded string")
    parser.add_argument("--width", type=_positive_float, help="width multiplier, e.g. 0.75")
    parser.add_argument("--resolution", type=_positive_int, help="input resolution, e.g. 224")
    parser.add_argument("--num-classes", type=_positive_int, help="classifier outputs")


def arch_from_args(args: argparse.Namespace):
    from mbnas.seeds import parse_arch

    return parse_arch(args.arch, width=args.width, resolution=args.resolution,
                      num_classes=args.num_classes)


# --- count -----------------------------------------------------------------


def _cmd_count(args: argparse.Namespace) -> int:
    from mbnas.cost import count, layer_costs
    from mbnas.encoding import encode
    from mbnas.report import stage_table

    arch = arch_from_args(args)
    total = count(arch)
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
        }))
    else:
        print(stage_table(arch, layer_costs(arch)))
    return 0


# --- entry point ---------------------------------------------------------------


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mbnas", description="Neural architecture search over MobileNets.")
    from mbnas import __version__

    parser.add_argument("--version", action="version", version=f"mbnas {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("count", help="multiply-adds and parameters of an architecture",
                       description="Price an architecture analytically: multiply-adds "
                                   "(convolutions + classifier, the papers' convention), "
                                   "PyTorch parameters and weights.")
    add_arch_arguments(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_count)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = make_parser().parse_args(argv)
        return args.func(args)
    except MbnasError as err:
        print(f"mbnas: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("mbnas: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
