"""The ``mbnas`` command line: one module per command (:mod:`.count`, :mod:`.train`,
:mod:`.baseline`, :mod:`.fidelity`, :mod:`.search`, :mod:`.show`, :mod:`.export`), each with
its own arguments and handler; the groups several share live in :mod:`._args`.

Each command imports what it needs when it runs, so ``mbnas count`` stays free of torch,
Ray, Optuna and pandas.  Bad input (an :class:`MbnasError` or an argument error) prints one
line on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys

from mbnas.cli import _args, baseline, count, export, fidelity, latency, search, show, train
from mbnas.errors import MbnasError

EXIT_USAGE = 2
COMMANDS = (count, train, baseline, fidelity, search, show, export, latency)


def make_parser() -> argparse.ArgumentParser:
    from mbnas._version import __version__

    parser = _args.Parser(prog="mbnas", description="Neural architecture search over MobileNets.")
    parser.add_argument("--version", action="version", version=f"mbnas {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_args.Parser)
    sub.required = True
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = make_parser().parse_args(argv)
        return args.func(args)
    except MbnasError as err:
        print(f"mbnas: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("mbnas: interrupted; finished work is saved (for a search, rerun the same "
              "command to resume)", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
