"""``python -m mbnas.latency ARCH RUNTIME THREADS BATCH [ROUNDS REPEATS MIN_SECONDS]``: one
network timed end to end in this fresh process, by the protocol given (a table's: its
``meta.rounds``, ``.repeats`` and ``.min_seconds``; else the default), its entry printed as
JSON.  A search measures its winner so: its own process holds Ray's threads and the
trainings' memory, which moved the figure by up to 1.5x (docs/latency.md)."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict


def main(argv: list[str]) -> int:
    from mbnas.arch.encoding import decode
    from mbnas.errors import MbnasError
    from mbnas.latency.measure import Timer

    def number(text: str) -> bool:
        try:
            return float(text) >= 0
        except ValueError:
            return False

    if len(argv) not in (4, 7) or not all(a.isdigit() and int(a) > 0 for a in argv[2:6]) \
            or not all(number(a) for a in argv[6:]):
        print("usage: python -m mbnas.latency ARCH RUNTIME THREADS BATCH [ROUNDS REPEATS "
              "MIN_SECONDS] (an encoded architecture, onnxruntime, torch or cuda, positive "
              "integers, and seconds)", file=sys.stderr)
        return 2
    text, runtime, threads, batch = argv[:4]
    protocol = {}
    if len(argv) == 7:
        protocol = {"rounds": int(argv[4]), "repeats": int(argv[5]),
                    "min_seconds": float(argv[6])}
    try:
        entry = Timer(runtime, int(threads), **protocol).time_network(decode(text), int(batch))
    except MbnasError as err:
        print(f"mbnas: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(asdict(entry)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
