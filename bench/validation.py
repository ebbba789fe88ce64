"""What validating only the last epoch saves: the default proxy training of one network,
validated after every epoch or after the last alone, alternated in one run so that both
see the same machine.

    python bench/validation.py [--arch mobilenet_v2 --width 0.75 --rounds 2 --threads 2]

Prints each training's seconds, the ratio of the means (> 1: last-epoch validation is
faster) and checks that both end at the same validation accuracy (the same network).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch

from mbnas.arch.seeds import seed, with_overrides
from mbnas.training.protocol import Protocol, TrainConfig
from mbnas.training.proxy import proxy_trainer


def train(arch, protocol: Protocol, every_epoch: bool) -> tuple[float, float]:
    trainer = proxy_trainer(arch, protocol)
    start = time.perf_counter()
    while trainer.epoch < protocol.train.epochs:
        result = trainer.train_epoch(validate_every_epoch=every_epoch)
    return time.perf_counter() - start, result.val_acc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="mobilenet_v2")
    parser.add_argument("--width", type=float, default=0.75)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    arch = with_overrides(seed(args.arch), width=args.width)
    protocol = Protocol(train=dataclasses.replace(TrainConfig(), threads=args.threads,
                                                  device="cpu"))
    seconds: dict[bool, list[float]] = {True: [], False: []}
    accs = set()
    for r in range(args.rounds):
        for every_epoch in ((True, False) if r % 2 == 0 else (False, True)):
            s, acc = train(arch, protocol, every_epoch)
            seconds[every_epoch].append(s)
            accs.add(acc)
            print(f"round {r + 1}: validate {'every epoch' if every_epoch else 'last epoch'}"
                  f" {s:.1f} s, val {100 * acc:.2f}%", flush=True)
    ratio = statistics.fmean(seconds[True]) / statistics.fmean(seconds[False])
    print(f"{args.arch} x{args.width:g}, {protocol.train.epochs} epochs, {args.threads} "
          f"threads: every epoch / last epoch only = {ratio:.3f}x; same accuracy: "
          f"{len(accs) == 1}")


if __name__ == "__main__":
    main()
