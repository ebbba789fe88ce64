"""What several commands share: the parser, argument types, the architecture and proxy
protocol argument groups (defined once), and the live progress line of a training."""

from __future__ import annotations

import argparse
import sys

from mbnas.errors import MbnasError
from mbnas.units import duration


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, not the usage block."""

    def error(self, message: str):  # noqa: D401 - argparse's signature
        raise MbnasError(f"{self.prog}: {message} (see {self.prog} --help)")


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


def int_at_least(minimum: int):
    """An argparse type: an integer no smaller than ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be at least {minimum}")
        return value

    return parse


positive_int = int_at_least(1)
nonneg_int = int_at_least(0)


def budget_count(text: str) -> int:
    from mbnas.units import parse_count

    try:
        return parse_count(text)
    except MbnasError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("budget: ")) from None


def budget_limit(text: str) -> tuple[str, float]:
    """One ``--budget``: a count of MACs (``300M``), a time (``15ms``: latency, priced from
    ``--latency-table``) or ``METRIC=AMOUNT`` for any registered cost metric
    (``params=3.5M``)."""
    from mbnas.costs import metric, metrics
    from mbnas.latency.metric import is_time, parse_ms

    name, sep, amount = text.partition("=")
    named_latency = bool(sep) and name.strip() == "latency"
    if named_latency or (not sep and is_time(text)):  # a latency budget (--latency-table)
        try:
            return "latency", parse_ms(amount if named_latency else text)
        except MbnasError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    if not sep:
        return "macs", float(budget_count(text))
    try:
        m = metric(name.strip())
        value = m.parse(amount.strip())
    except MbnasError as err:
        raise argparse.ArgumentTypeError(
            f"{str(err).removeprefix('budget: ')} (a budget is MACs, e.g. 300M, or "
            f"METRIC=AMOUNT with METRIC one of {', '.join(x.name for x in metrics())})"
        ) from None
    if name.strip() == "macs":
        value = float(round(value))
    return m.name, float(value)


def budget_of(limits: list[tuple[str, float]]):
    """The ``--budget`` options as one budget: a number of MACs where that is all there is
    (as every run has recorded it), else a :class:`mbnas.costs.Budget`."""
    from mbnas.costs import Budget

    if [n for n, _ in limits] == ["macs"]:
        return int(limits[0][1])
    try:
        return Budget(tuple(limits))
    except MbnasError as err:
        raise MbnasError(f"--budget: {err}") from None


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def add_arch_arguments(parser: argparse.ArgumentParser) -> None:
    """ARCH and its modifiers, the same for every command that takes an architecture."""
    parser.add_argument("arch", metavar="ARCH",
                        help="seed name (mobilenet_v1, mobilenet_v2, mobilenet_v3_large, "
                             "mobilenet_v3_small), spec file (.yaml/.json) "
                             "or encoded string")
    parser.add_argument("--width", type=positive_float, help="width multiplier, e.g. 0.75")
    parser.add_argument("--resolution", type=positive_int, help="input resolution, e.g. 224")
    parser.add_argument("--num-classes", type=positive_int, help="classifier outputs")


def arch_from_args(args: argparse.Namespace):
    from mbnas.arch.seeds import parse_arch

    return parse_arch(args.arch, width=args.width, resolution=args.resolution,
                      num_classes=args.num_classes)


def add_protocol_arguments(parser: argparse.ArgumentParser, *,
                           subset: int | None = None) -> None:
    """The proxy protocol options, the same for train, baseline and search (``subset``:
    the command's default --subset, if not the protocol's)."""
    from mbnas.data.registry import dataset_names
    from mbnas.training.protocol import (
        ADAPTATIONS,
        DEFAULT_DATASET,
        DEFAULT_SUBSET,
        DEFAULT_VAL_SIZE,
        DEVICES,
        TrainConfig,
    )

    defaults = TrainConfig()
    g = parser.add_argument_group("proxy protocol")
    g.add_argument("--dataset", default=DEFAULT_DATASET, choices=dataset_names(),
                   help="fashion-mnist (default), cifar10, cifar100, folder (class "
                        "sub-folders of images), synthetic (tests only)")
    g.add_argument("--data-dir", help="where the data set lies (default: its usual place, "
                                      "or $MBNAS_DATA)")
    g.add_argument("--epochs", type=positive_int, default=defaults.epochs,
                   help=f"epochs per proxy training (default {defaults.epochs})")
    subset = subset or DEFAULT_SUBSET
    g.add_argument("--subset", type=nonneg_int, default=subset,
                   help=f"training images used, 0 for all (default {subset})")
    g.add_argument("--seed", type=nonneg_int, default=defaults.seed, help="random seed")
    g.add_argument("--device", choices=DEVICES, default=defaults.device,
                   help="where to train (default auto: CUDA if present)")
    g.add_argument("--threads", type=positive_int,
                   help="torch threads per training (default: all cores)")
    g.add_argument("--batch-size", type=positive_int, default=defaults.batch_size)
    g.add_argument("--lr", type=positive_float, default=defaults.lr,
                   help=f"peak learning rate (default {defaults.lr})")
    g.add_argument("--warmup-epochs", type=fraction, default=defaults.warmup_epochs,
                   help=f"linear warm-up, in epochs (default {defaults.warmup_epochs:g})")
    g.add_argument("--val-size", type=positive_int, default=DEFAULT_VAL_SIZE,
                   help="validation images carved from the training set (default "
                        f"{DEFAULT_VAL_SIZE}; at most a fifth of it)")
    g.add_argument("--proxy-resolution", type=int_at_least(8),
                   default=defaults.proxy_resolution,
                   help="resize the images to this side, e.g. 32 (default: "
                        f"{defaults.proxy_resolution or 'their own'})")
    g.add_argument("--proxy-adapt", choices=ADAPTATIONS, default=defaults.proxy_adapt,
                   help="how the target is adapted to small images: its first stride-2 "
                        "layer (stem), first two (first2) or none at stride 1 "
                        f"(default {defaults.proxy_adapt})")


def protocol_from_args(args: argparse.Namespace):
    import os

    from mbnas.training.protocol import DATA_ENV, Protocol, TrainConfig

    data_dir = args.data_dir or os.environ.get(DATA_ENV) or None
    cores = os.cpu_count() or 1
    if args.threads and args.threads > cores and not getattr(args, "address", None):
        # More threads than cores oversubscribes OpenMP: 10-100x slower training here.
        raise MbnasError(f"--threads: {args.threads} is more than this machine's {cores} "
                         f"cores; give 1 to {cores}")
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         seed=args.seed, device=args.device, threads=args.threads,
                         warmup_epochs=args.warmup_epochs,
                         proxy_resolution=args.proxy_resolution, proxy_adapt=args.proxy_adapt)
    return Protocol(dataset=args.dataset, data_dir=data_dir, subset=args.subset or None,
                    val_size=args.val_size, train=config).with_absolute_paths()


class EpochProgress:
    """One live line per epoch on stderr: progress bar, loss, throughput, time left."""

    def __init__(self, epochs: int, start_epoch: int = 0) -> None:
        import time

        self.time = time.perf_counter
        self.epochs = epochs
        self.epoch = start_epoch
        self.start = self.time()
        self.live = sys.stderr.isatty()

    def step(self, step: int, steps: int, loss: float) -> None:
        if not self.live:
            return
        done = (self.epoch + step / steps) / self.epochs
        elapsed = self.time() - self.start
        left = elapsed / max(done, 1e-9) * (1 - done)
        bar = "#" * int(20 * step / steps)
        print(f"\r  epoch {self.epoch + 1}/{self.epochs} [{bar:<20}] loss {loss:.3f} "
              f"time left {duration(left)}   ", end="", file=sys.stderr, flush=True)

    def epoch_done(self, result) -> None:
        self.epoch = result.epoch
        left = (self.time() - self.start) / self.epoch * (self.epochs - self.epoch)
        end = "\r" if self.live else ""
        print(f"{end}  epoch {result.epoch}/{self.epochs}  loss {result.loss:.3f}  "
              f"val acc {100 * result.val_acc:.2f}%  {result.images_per_s:,.0f} img/s  "
              f"{result.seconds:.1f}s  time left {duration(left)}   ", file=sys.stderr)


def canonical_models(text: str | None, *, allow_none: bool = False) -> list[tuple[str, float]]:
    """``--models mobilenet_v2@1,mobilenet_v1@0.5`` as keys of the published MobileNets
    (:data:`mbnas.training.baseline.PUBLISHED`); None: all of them; ``none`` for none
    where ``allow_none``."""
    from mbnas.training.baseline import PUBLISHED

    if not text:
        return list(PUBLISHED)
    known = {f"{n}@{w:g}": (n, w) for n, w in PUBLISHED}
    wanted = [m.strip() for m in text.split(",") if m.strip()]
    if allow_none:
        wanted = [m for m in wanted if m != "none"]
    for m in wanted:
        if m not in known:
            raise MbnasError(f"--models: {m!r} is not one of {', '.join(known)}"
                             + (" (or none)" if allow_none else ""))
    return [known[m] for m in wanted]
