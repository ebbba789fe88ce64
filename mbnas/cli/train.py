"""``mbnas train``: train one architecture, or a search's winner, under a proxy protocol."""

from __future__ import annotations

import argparse
import sys

from mbnas.cli._args import (
    EpochProgress,
    add_arch_arguments,
    add_protocol_arguments,
    arch_from_args,
    protocol_from_args,
)
from mbnas.errors import MbnasError
from mbnas.files import write_json


def _cmd_train(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    import torch

    from mbnas.arch.cost import count
    from mbnas.arch.encoding import encode
    from mbnas.outcome import Status
    from mbnas.resources import check_network_fits
    from mbnas.search.runs import is_run
    from mbnas.training.proxy import load_data, proxy_arch, proxy_trainer, weights_file
    from mbnas.training.trainer import pick_device

    stamp = time.strftime("%Y%m%d-%H%M%S")
    source = None
    if is_run(args.arch):  # a run's trial: the winner's final training
        arch, source = _run_trial_arch(args)
        default_out = Path(args.arch) / "final" / f"trial-{source['trial']}-{stamp}"
    else:
        if args.trial is not None:
            raise MbnasError(f"--trial applies to run folders; {args.arch!r} is not one "
                             "(it has no run.json or trials.csv)")
        arch = arch_from_args(args)
        default_out = Path(f"runs/train/{stamp}")
    protocol = protocol_from_args(args)
    pick_device(protocol.train.device)  # bad input fails before any output
    out = Path(args.out) if args.out else default_out
    if (out / "model.pt").exists():
        raise MbnasError(f"{out}/model.pt exists; give another --out (nothing was changed)")
    data = load_data(protocol)
    # A network no memory here holds is refused before the first line of output.
    check_network_fits(proxy_arch(arch, resolution=data.size, num_classes=data.num_classes,
                                  adapt=protocol.train.proxy_adapt))
    target = count(arch)
    print(f"target: {encode(arch)}\n  {target.macs / 1e6:.1f}M MACs, "
          f"{target.params / 1e6:.2f}M params at {arch.resolution}x{arch.resolution}",
          file=sys.stderr)
    progress = EpochProgress(protocol.train.epochs)
    trainer = proxy_trainer(arch, protocol, progress=progress.step)
    print(f"proxy: {data.name}, {len(data.train)} train / {len(data.val)} val images "
          f"{data.size}x{data.size}, {protocol.train.epochs} epochs on {trainer.device}",
          file=sys.stderr)
    result = trainer.fit(on_epoch=progress.epoch_done)
    test_acc = trainer.evaluate(data.test) if result.status is Status.COMPLETE else 0.0
    out.mkdir(parents=True, exist_ok=True)
    torch.save(weights_file(trainer, arch), out / "model.pt")
    metrics = {"arch": encode(arch), "proxy_arch": encode(trainer.arch), "macs": target.macs,
               "params": target.params, "dataset": data.name, "test_acc": test_acc,
               "protocol": protocol.to_dict(), **result.to_dict()}
    if source:
        metrics["source"] = source
    write_json(out / "metrics.json", metrics)
    if result.status is not Status.COMPLETE:
        print(f"mbnas: training diverged: {result.error}", file=sys.stderr)
        return 1
    print(f"val acc {100 * result.val_acc:.2f}%, test acc {100 * test_acc:.2f}% "
          f"in {result.seconds:.1f}s; saved {out}/model.pt and metrics.json "
          f"(`mbnas export {out}` writes it as a PyTorch module with these weights)")
    return 0


def _run_trial_arch(args: argparse.Namespace):
    """The target spec of a run's trial (``--trial``, default the winner) and where it came
    from; the modifiers --width, --resolution, --num-classes still apply."""
    from mbnas.arch.encoding import decode
    from mbnas.export.sources import Modifiers, trial_provenance
    from mbnas.search.runs import pick_trial

    record = pick_trial(args.arch, args.trial or "best")
    arch = Modifiers(args.width, args.resolution, args.num_classes).apply(decode(record.arch))
    return arch, trial_provenance(args.arch, record)


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train one architecture, or a search's winner",
                       description="Train the proxy network of an architecture (its first "
                                   "stride-2 layer at stride 1) on the data set's images. "
                                   "ARCH may be a run folder: its winner (or --trial N) is "
                                   "trained under the protocol given here, e.g. all the data "
                                   "and more epochs: mbnas train runs/search-300M --subset 0 "
                                   "--epochs 30.")
    add_arch_arguments(p)
    add_protocol_arguments(p)
    p.add_argument("--trial", help="for a run folder: best (default), a trial number or a "
                                   "reference's name")
    p.add_argument("--out", help="output folder (default runs/train/<time>, or "
                                 "RUN/final/trial-N-<time> for a run's trial)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return _cmd_train(args)
