"""A pilot before a panel run: train a few panel members under protocol variants (of
the default's cost, about 18,000 image-epochs, unless the name says) and print their
final and per-epoch validation accuracy, to see which variant closes the default proxy's
worst disagreement with the reference at seed 0 (space-3, first of the space members in
the reference's seed 0 and last of the whole panel in the default proxy's) before paying
for a whole panel.

    python bench/fidelity/pilot.py [VARIANT ...]     # default: every variant below

Two trainings at a time, one thread each; rows are appended to
bench/fidelity/pilot/pilot.csv (one per variant, member and seed) as they finish.
"""

from __future__ import annotations

import csv
import dataclasses
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from mbnas.arch.encoding import encode
from mbnas.search.space import resolve_space
from mbnas.training.fidelity import _train_job, canonical_members, space_members
from mbnas.training.protocol import Protocol, TrainConfig

MEMBERS = ("space-3", "mobilenet_v2 0.75")
BASE = TrainConfig(threads=1)
VARIANTS = {
    "lr0.1": Protocol(train=dataclasses.replace(BASE, lr=0.1)),
    "lr0.2": Protocol(train=dataclasses.replace(BASE, lr=0.2)),
    "lr0.4": Protocol(train=dataclasses.replace(BASE, lr=0.4)),
    "6000x6 (2x cost)": Protocol(train=dataclasses.replace(BASE, epochs=6)),
    "12000x3 (2x cost)": Protocol(subset=12000, train=dataclasses.replace(BASE)),
    "18000x3 (3x cost)": Protocol(subset=18000, train=dataclasses.replace(BASE)),
    "3000x6": Protocol(subset=3000, train=dataclasses.replace(BASE, epochs=6)),
    "18000x1": Protocol(subset=18000, train=dataclasses.replace(BASE, epochs=1)),
    "bs32": Protocol(train=dataclasses.replace(BASE, batch_size=32)),
    "ls0": Protocol(train=dataclasses.replace(BASE, label_smoothing=0.0)),
    "warm1": Protocol(train=dataclasses.replace(BASE, warmup_epochs=1.0)),
}
OUT = Path(__file__).parent / "pilot" / "pilot.csv"


def main() -> None:
    names = sys.argv[1:] or list(VARIANTS)
    panel = {m.name: m for m in [*canonical_members(), *space_members(resolve_space("mobilenet"))]}
    done = set()
    if OUT.exists():
        with OUT.open() as f:
            done = {(r["variant"], r["name"]) for r in csv.DictReader(f)}
    todo = [(v, panel[n]) for v in names for n in MEMBERS if (v, n) not in done]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=context) as pool:
        futures = {pool.submit(_train_job, m.name, m.group, encode(m.arch), m.top1,
                               VARIANTS[v].to_dict(), False): v for v, m in todo}
        for future in as_completed(futures):
            row = {"variant": futures[future], **future.result()}
            row.pop("arch")
            new = not OUT.exists()
            with OUT.open("a", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(row))
                if new:
                    writer.writeheader()
                writer.writerow(row)
            print(row["variant"], row["name"], row["val_acc"], row["val_accs"],
                  row["train_s"], flush=True)


if __name__ == "__main__":
    main()
