"""``python -m mbnas.latency ARCH RUNTIME THREADS BATCH``: one network timed end to end in
this fresh process, its entry printed as JSON.  A search measures its winner so: its own
process holds Ray's threads and the trainings' memory, which moved the figure by up to
1.5x (docs/latency.md)."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict


def main(argv: list[str]) -> int:
    from mbnas.arch.encoding import decode
    from mbnas.errors import MbnasError
    from mbnas.latency.measure import Timer

    if len(argv) != 4 or not (argv[2].isdigit() and argv[3].isdigit()):
        print("usage: python -m mbnas.latency ARCH RUNTIME THREADS BATCH (an encoded "
              "architecture, onnxruntime, torch or cuda, and two positive integers)",
              file=sys.stderr)
        return 2
    text, runtime, threads, batch = argv
    try:
        entry = Timer(runtime, int(threads)).time_network(decode(text), int(batch))
    except MbnasError as err:
        print(f"mbnas: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(asdict(entry)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
