"""The fidelity figures of a protocol's rows against a reference's, from the CSV files alone
(no training): the seed spread, Kendall's tau against the reference and ImageNet top-1,
and the MAC-matched pairs.

    python bench/fidelity/figures.py bench/fidelity/default bench/fidelity/reference-18000x5

Each argument is a folder holding a ``fidelity.csv`` (``mbnas fidelity --out``) and the
``protocol.json`` with the command that made it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mbnas.training.fidelity import figures_lines, read_rows, summarise


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    proxy, reference = (Path(a) for a in sys.argv[1:])
    for folder in (proxy, reference):
        command = json.loads((folder / "protocol.json").read_text())["command"]
        print(f"{folder}: {command}")
    report = summarise(read_rows(proxy / "fidelity.csv"), read_rows(reference / "fidelity.csv"))
    for line in figures_lines(report.figures):
        print(line)


if __name__ == "__main__":
    main()
