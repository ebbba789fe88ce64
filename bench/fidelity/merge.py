"""Merge trainings made elsewhere (another machine, a GPU) into a fidelity folder, and
optionally rewrite the shipped reference from it:

    python bench/fidelity/merge.py bench/fidelity/reference-18000x5 \
        bench/fidelity/reference-cuda/{canonical,space,canonical2,space2}.csv \
        --save-reference mbnas/training/data/fidelity_reference_fashion-mnist.csv

Every merged row must be a completed training of the folder's protocol (``mbnas fidelity``
checks that before it trains; here the caller vouches for it, and the rows' own fields are
checked); a (network, seed) the folder already holds is refused, not overwritten. The
merge is recorded in the folder's ``protocol.json`` command chain.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from mbnas.training.fidelity import completed, read_rows, save_reference, write_rows
from mbnas.training.protocol import Protocol


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="holds fidelity.csv and protocol.json")
    parser.add_argument("tables", type=Path, nargs="+", help="fidelity.csv files to add")
    parser.add_argument("--save-reference", type=Path, metavar="FILE")
    args = parser.parse_args()
    meta_path = args.folder / "protocol.json"
    meta = json.loads(meta_path.read_text())
    rows = read_rows(args.folder / "fidelity.csv")
    held = {(r["arch"], r["seed"]) for r in rows}
    added = []
    for table in args.tables:
        for row in read_rows(table):
            key = (row["arch"], row["seed"])
            if key in held:
                sys.exit(f"{table}: {row['name']} seed {row['seed']} is already in "
                         f"{args.folder}; nothing was merged")
            if not completed(row):
                sys.exit(f"{table}: {row['name']} seed {row['seed']} did not complete "
                         f"({row['status']}); nothing was merged")
            held.add(key)
            added.append(row)
    command = "python " + shlex.join(sys.argv)
    write_rows(rows + added, args.folder / "fidelity.csv")
    meta["command"] = f"{meta['command']} && {command}"
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    if args.save_reference:
        save_reference(rows + added, args.save_reference, command=meta["command"],
                       protocol=Protocol.from_dict(meta["protocol"]))
    print(f"merged {len(added)} rows into {args.folder}/fidelity.csv ({len(rows) + len(added)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
