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


def _int_at_least(minimum: int):
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


_positive_int = _int_at_least(1)
_nonneg_int = _int_at_least(0)


def add_arch_arguments(parser: argparse.ArgumentParser) -> None:
    """ARCH and its modifiers, the same for every command that takes an architecture."""
    parser.add_argument("arch", metavar="ARCH",
                        help="seed name (mobilenet_v1, mobilenet_v2, mobilenet_v3_large, "
                             "mobilenet_v3_small), spec file (.yaml/.json) "
                             "or encoded string")
    parser.add_argument("--width", type=_positive_float, help="width multiplier, e.g. 0.75")
    parser.add_argument("--resolution", type=_positive_int, help="input resolution, e.g. 224")
    parser.add_argument("--num-classes", type=_positive_int, help="classifier outputs")


def arch_from_args(args: argparse.Namespace):
    from mbnas.arch.seeds import parse_arch

    return parse_arch(args.arch, width=args.width, resolution=args.resolution,
                      num_classes=args.num_classes)


# --- count -----------------------------------------------------------------


def _cmd_count(args: argparse.Namespace) -> int:
    from mbnas.arch.cost import count, layer_costs
    from mbnas.arch.encoding import encode
    from mbnas.cli.report import stage_table

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


# --- proxy training ------------------------------------------------------------


def add_protocol_arguments(parser: argparse.ArgumentParser) -> None:
    """The proxy protocol options, the same for train, baseline and search."""
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
    g.add_argument("--epochs", type=_positive_int, default=defaults.epochs,
                   help=f"epochs per proxy training (default {defaults.epochs})")
    g.add_argument("--subset", type=_nonneg_int, default=DEFAULT_SUBSET,
                   help=f"training images used, 0 for all (default {DEFAULT_SUBSET})")
    g.add_argument("--seed", type=_nonneg_int, default=defaults.seed, help="random seed")
    g.add_argument("--device", choices=DEVICES, default=defaults.device,
                   help="where to train (default auto: CUDA if present)")
    g.add_argument("--threads", type=_positive_int,
                   help="torch threads per training (default: all cores)")
    g.add_argument("--batch-size", type=_positive_int, default=defaults.batch_size)
    g.add_argument("--lr", type=_positive_float, default=defaults.lr,
                   help=f"peak learning rate (default {defaults.lr})")
    g.add_argument("--warmup-epochs", type=_fraction, default=defaults.warmup_epochs,
                   help=f"linear warm-up, in epochs (default {defaults.warmup_epochs:g})")
    g.add_argument("--val-size", type=_positive_int, default=DEFAULT_VAL_SIZE,
                   help="validation images carved from the training set (default "
                        f"{DEFAULT_VAL_SIZE}; at most a fifth of it)")
    g.add_argument("--proxy-resolution", type=_int_at_least(8),
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
              f"time left {_duration(left)}   ", end="", file=sys.stderr, flush=True)

    def epoch_done(self, result) -> None:
        self.epoch = result.epoch
        left = (self.time() - self.start) / self.epoch * (self.epochs - self.epoch)
        end = "\r" if self.live else ""
        print(f"{end}  epoch {result.epoch}/{self.epochs}  loss {result.loss:.3f}  "
              f"val acc {100 * result.val_acc:.2f}%  {result.images_per_s:,.0f} img/s  "
              f"{result.seconds:.1f}s  time left {_duration(left)}   ", file=sys.stderr)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _write_json(path, data) -> None:
    """Write JSON atomically: a crash never leaves half a file."""
    import os
    from pathlib import Path

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


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
    _write_json(out / "metrics.json", metrics)
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
    from mbnas.arch.seeds import with_overrides
    from mbnas.search.runs import pick_trial

    row = pick_trial(args.arch, args.trial or "best")
    label = row.label
    arch = with_overrides(decode(row.arch), width=args.width, resolution=args.resolution,
                          num_classes=args.num_classes)
    return arch, {"run": str(args.arch), "trial": label, "role": row.role_text,
                  "proxy_val_acc": row.val_acc}


# --- baseline ------------------------------------------------------------------


def _cmd_baseline(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mbnas.training.baseline import PUBLISHED, markdown_table, run_baseline

    protocol = protocol_from_args(args)
    models = list(PUBLISHED)
    if args.models:
        wanted = [m.strip() for m in args.models.split(",") if m.strip()]
        known = {f"{n}@{w:g}": (n, w) for n, w in PUBLISHED}
        for m in wanted:
            if m not in known:
                raise MbnasError(f"--models: {m!r} is not one of {', '.join(known)}")
        models = [known[m] for m in wanted]
    out = Path(args.out or f"runs/baselines/{protocol.dataset}")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    def progress(i: int):
        bar = EpochProgress(protocol.train.epochs)
        return bar.step

    table, taus = run_baseline(protocol, out_dir=out, models=models, log=log,
                               progress=progress)
    print(markdown_table(table))
    print(f"\nproxy fidelity: Kendall's tau vs ImageNet top-1 = {taus['val']:.3f} (val), "
          f"{taus['test']:.3f} (test); saved {out}/baseline.csv and baseline.md")
    return 0


# --- fidelity ------------------------------------------------------------------


def _seeds(text: str) -> tuple[int, ...]:
    parse = _nonneg_int
    seeds = tuple(parse(t.strip()) for t in text.split(",") if t.strip())
    if not seeds or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"{text!r}: give distinct seeds, e.g. 0,1")
    return seeds


def _canonical_models(text: str | None):
    """``mobilenet_v2@1,mobilenet_v1@0.5`` (or none) as PUBLISHED keys; None: all of them."""
    from mbnas.training.baseline import PUBLISHED

    if text is None:
        return list(PUBLISHED)
    known = {f"{n}@{w:g}": (n, w) for n, w in PUBLISHED}
    wanted = [m.strip() for m in text.split(",") if m.strip() and m.strip() != "none"]
    for m in wanted:
        if m not in known:
            raise MbnasError(f"--models: {m!r} is not one of {', '.join(known)} (or none)")
    return [known[m] for m in wanted]


def _cmd_fidelity(args: argparse.Namespace) -> int:
    import shlex
    from pathlib import Path

    from mbnas.training import fidelity as fid

    protocol = protocol_from_args(args)
    if args.seed:
        raise MbnasError("--seed: fidelity trains at every seed of --seeds; use --seeds")
    models = _canonical_models(args.models)
    if args.reference == "none":
        reference = None
    else:
        reference = Path(args.reference) if args.reference else fid.reference_path(
            protocol.dataset)
        if args.reference and not reference.is_file():
            raise MbnasError(f"--reference: {args.reference!r} is not a file (or write none)")
        if not reference.is_file():
            reference = None
    from mbnas.search.space import resolve_space

    panel = fid.canonical_members(models)
    if args.panel_size:
        panel += fid.space_members(resolve_space(args.space), budget=args.panel_budget,
                                   size=args.panel_size, band=fid.PANEL_BAND,
                                   seed=args.panel_seed)
    if not panel:
        raise MbnasError("the panel is empty: give --models or a --panel-size above 0")
    reference_rows = fid.read_rows(reference) if reference else None
    t = protocol.train
    out = Path(args.out or f"runs/fidelity/{protocol.dataset}-{protocol.subset or 'all'}"
                           f"x{t.epochs}")
    command = "mbnas " + shlex.join(sys.argv[1:])
    fid.check_out_dir(out, protocol)
    from mbnas.training.proxy import load_data
    from mbnas.training.trainer import pick_device

    pick_device(protocol.train.device)

    data = load_data(protocol)  # a missing data set stops us before any output

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log(f"panel: {len(panel)} architectures x {len(args.seeds)} seed(s) on {data.name} "
        f"({len(data.train)} train / {len(data.val)} val, {data.size}px, {t.epochs} "
        f"epochs); results in {out}/")
    rows = fid.run_trainings(panel, protocol, args.seeds, out_dir=out, command=command,
                             jobs=args.jobs, test=args.test, log=log,
                             progress=lambda: EpochProgress(t.epochs).step)
    report = fid.summarise(rows, reference_rows)
    fid.write_report(report, out, protocol=protocol, command=command,
                     reference_command=fid.reference_command(reference) if reference else "")
    if args.save_reference:  # every training in the folder: a reference grows run by run
        fid.save_reference(fid.read_rows(out / "fidelity.csv"), Path(args.save_reference),
                           command=command, protocol=protocol)
    import pandas as pd

    from mbnas.training.baseline import markdown_table

    shown = pd.DataFrame([{k: v for k, v in r.items() if k != "arch"} for r in report.table])
    print(markdown_table(shown) + "\n")
    print("\n".join(fid.figures_lines(report.figures)))
    if reference:
        print(f"reference: {reference} (made by: {fid.reference_command(reference)})")
    print(f"saved {out}/fidelity.csv, summary.csv, fidelity.md and figures.json")
    return 0


# --- search --------------------------------------------------------------------


def _budget(text: str) -> int:
    from mbnas.units import parse_count

    try:
        return parse_count(text)
    except MbnasError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("budget: ")) from None


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def _faults(text: str) -> dict[int, str]:
    """``1:raise,2:nan``: the Nth trial issued gets that fault (for tests)."""
    out = {}
    for item in filter(None, text.split(",")):
        number, _, fault = item.partition(":")
        if not number.isdigit() or fault not in ("raise", "nan", "oom", "kill", "slow"):
            raise argparse.ArgumentTypeError(f"{item!r}: write N:raise|nan|oom|kill|slow")
        out[int(number)] = fault
    return out


def _references(text: str) -> tuple[str, ...]:
    from mbnas.arch.seeds import SEEDS

    names = tuple(n for n in text.split(",") if n and n != "none")
    for name in names:
        if name not in SEEDS:
            raise argparse.ArgumentTypeError(f"{name!r} is not a seed; choose from "
                                             f"{', '.join(SEEDS)} or none")
    return names


def _summary_table(outcome) -> str:
    from mbnas.units import format_count

    rows = []
    if outcome.winner:
        confirmed = outcome.confirmation and outcome.confirmation["verdict"].get("winner")
        rows.append(("winner (confirmed)" if confirmed else "winner (proxy)", outcome.winner))
    rows += [(f"{r.name} (reference)", r) for r in outcome.references]
    lines = [f"{'':<26}{'proxy val acc':>14}{'MACs':>10}{'params':>9}  arch"]
    for label, r in rows:
        acc = f"{100 * r.val_acc:.2f}%" if r.complete else r.state.value
        lines.append(f"{label:<26}{acc:>14}{format_count(r.macs):>10}"
                     f"{format_count(r.params, 2):>9}  {r.arch}")
    if rows:
        lines.append(outcome.proxy_noise)
    return "\n".join(lines)


def _cmd_search(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mbnas.cli.report import confirmation_table
    from mbnas.search.confirm import ConfirmSettings
    from mbnas.search.run import run_search
    from mbnas.search.settings import SearchSettings

    settings = SearchSettings(
        budget=args.budget, name=args.name or "", space=args.space, trials=args.trials,
        objective=args.objective, sampler=args.sampler, resolution=args.resolution,
        num_classes=args.num_classes or SearchSettings.num_classes,
        protocol=protocol_from_args(args),
        concurrency=args.concurrency, cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial, address=args.address,
        early_stopping=args.early_stopping, runs_dir=Path(args.runs_dir),
        faults=args.inject_faults or {}, references=args.references,
        keep_weights=args.keep_weights,
        confirm=ConfirmSettings(top=0 if args.no_confirm else args.confirm_top,
                                seeds=args.confirm_seeds, epochs=args.confirm_epochs,
                                subset=args.confirm_subset))

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    outcome = run_search(settings, log=log)
    print(f"\nresults: {outcome.run_dir}/ (trials.csv, best.json; "
          f"`mbnas show {outcome.run_dir}` for the table and plot)")
    print(_summary_table(outcome))
    if outcome.confirmation:
        print("\n" + confirmation_table(outcome.confirmation))
    if outcome.near_chance:
        print(f"mbnas: error: {outcome.near_chance}", file=sys.stderr)
        return 1
    counted = [r for r in outcome.rows if not r.is_reference and r.state.counted]
    if outcome.winner is None:
        failed = [r for r in counted if r.state.failed]
        if counted and len(failed) == len(counted):
            first = failed[0].error or failed[0].state.value
            print(f"mbnas: error: every search trial failed (first: {first}); see "
                  f"{outcome.run_dir}/trials.csv", file=sys.stderr)
            return 1
        print("mbnas: no search trial finished within budget yet", file=sys.stderr)
        return 1
    return 0


# --- show ----------------------------------------------------------------------


def _cmd_show(args: argparse.Namespace) -> int:
    from mbnas.cli.show import show

    print(show(args.run))
    return 0


# --- export --------------------------------------------------------------------


def _cmd_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mbnas.search.runs import check_run

    source = Path(args.source)
    kind = _source_kind(source)
    if kind == "run":
        arch, state_dict, provenance, default_out, inputs = _trial_export(args)
    elif kind == "trained":
        arch, state_dict, provenance, default_out, inputs = _trained_export(args)
    elif kind == "folder":
        check_run(source)  # names what is missing
    else:
        if args.trial != "best":
            raise MbnasError(f"--trial applies to run folders; {args.source!r} is not one")
        if args.target:
            raise MbnasError(f"--target applies to run folders and `mbnas train` folders; "
                             f"{args.source!r} is a spec, exported as given with fresh weights "
                             "(drop --target)")
        args.arch = args.source
        arch, state_dict, inputs = arch_from_args(args), None, None
        provenance = {"source": args.source}
        default_out = Path("runs/export") / Path(args.source).stem.split(",")[0][:40]
    from mbnas.export import export

    out = Path(args.out) if args.out else default_out
    paths = export(arch, out, formats=args.format, class_name=args.class_name,
                   state_dict=state_dict, provenance=provenance, inputs=inputs)
    weights = "trained weights" if state_dict is not None else "freshly initialised weights"
    print(f"exported {args.class_name} to {out}/ ({', '.join(p.name for p in paths.values())}) "
          f"with {weights}")
    return 0


def _source_kind(source) -> str:
    """What export's SOURCE names: a ``run``, a ``trained`` model's folder, another
    ``folder``, or a ``spec`` (seed name, file or string)."""
    from mbnas.search.runs import is_run

    try:
        if is_run(source):
            return "run"
        if (source / "model.pt").is_file() and (source / "metrics.json").is_file():
            return "trained"
        if source.is_dir() or (source.parent.name == "runs" and not source.suffix):
            return "folder"
    except OSError:  # a name the OS refuses: an architecture string too long for a file
        pass
    return "spec"


def _trial_export(args: argparse.Namespace):
    """Arch, weights, provenance, default folder and input description of a run's trial
    (see mbnas.search.runs.pick_trial); its weights file is always the run's own."""
    from pathlib import Path

    from mbnas.arch.encoding import decode
    from mbnas.export import read_state_dict
    from mbnas.search.runs import pick_trial, weights_path

    row = pick_trial(args.source, args.trial)
    label = row.label
    target = decode(row.arch)
    provenance = {"run": str(args.source), "trial": label, "role": row.role_text,
                  "proxy_val_acc": row.val_acc, "target_arch": row.arch,
                  "target_macs": row.macs}
    default_out = Path(args.source) / "export" / f"trial-{label}"
    weights = weights_path(args.source, row.checkpoint)
    if not args.target and (weights is None or not weights.is_file()):
        why = (row.weights if row.weights not in ("", "kept")
               else f"{weights} is missing" if weights else "none were saved")
        raise MbnasError(f"trial {label} of {str(args.source)!r} has no trained weights: "
                         f"{why}; add --target to export its spec with fresh weights")
    if args.target:
        provenance["weights"] = "target spec, freshly initialised"
        return _target_spec(args, target), None, provenance, default_out, None
    import torch

    state_dict = read_state_dict(weights)  # names a bad file in one line
    payload = torch.load(weights, map_location="cpu", weights_only=True)
    arch = decode(payload["arch"])
    _refuse_modifiers(args, f"trial {label}'s trained weights", arch)
    provenance["weights"] = ("trained proxy network (its first stride-2 layer at stride 1, "
                             "see mbnas.training.proxy)")
    return arch, state_dict, provenance, default_out, _weights_inputs(payload, weights)


def _target_spec(args: argparse.Namespace, target):
    """The target spec of a run's trial or a trained model, with --width, --resolution and
    --num-classes applied as for any spec."""
    from mbnas.arch.seeds import with_overrides

    return with_overrides(target, width=args.width, resolution=args.resolution,
                          num_classes=args.num_classes)


def _refuse_modifiers(args: argparse.Namespace, what: str, arch) -> None:
    """--width, --resolution and --num-classes cannot change trained weights."""
    given = [f"--{name.replace('_', '-')}" for name in ("width", "resolution", "num_classes")
             if getattr(args, name) is not None]
    if given:
        raise MbnasError(f"{given[0]} does not apply to {what}: they fix the network (width "
                         f"{arch.width:g}, {arch.resolution} px, {arch.num_classes} classes); "
                         f"add --target to export the target spec with fresh weights and "
                         f"{' '.join(given)} applied")


def _weights_inputs(payload, weights, dataset: str | None = None):
    """What the weights in ``payload`` expect of an image; said to be unknown (never
    guessed) for files written before mbnas recorded it."""
    from mbnas.export import Inputs

    if isinstance(payload, dict) and "input" in payload:
        return Inputs.from_record(payload["input"])
    return Inputs.unknown(f"{weights.name} was written before mbnas recorded the training "
                          "images' normalisation with the weights", dataset=dataset)


def _trained_export(args: argparse.Namespace):
    """A ``mbnas train`` folder: the network it trained, with its weights (or with
    --target its target spec, freshly initialised)."""
    from pathlib import Path

    import torch

    from mbnas.arch.encoding import decode
    from mbnas.export import read_state_dict

    if args.trial != "best":
        raise MbnasError(f"--trial applies to run folders; {args.source!r} is a trained model")
    folder = Path(args.source)
    try:
        metrics = json.loads((folder / "metrics.json").read_text())
        arch = decode(metrics["proxy_arch"])
        target = decode(metrics["arch"])
    except (OSError, ValueError, KeyError) as err:
        raise MbnasError(f"{folder}/metrics.json is not a `mbnas train` record: {err}") \
            from None
    provenance = {"trained": str(folder), "dataset": metrics.get("dataset"),
                  "val_acc": metrics.get("val_acc"), "test_acc": metrics.get("test_acc"),
                  "target_arch": metrics.get("arch"), **metrics.get("source", {})}
    if args.target:
        provenance["weights"] = "target spec, freshly initialised"
        return _target_spec(args, target), None, provenance, folder / "export", None
    _refuse_modifiers(args, f"the weights trained in {str(folder)!r}", arch)
    provenance["weights"] = ("trained by mbnas train (the network as trained: its first "
                             "stride-2 layer at stride 1, see mbnas.training.proxy)")
    weights = folder / "model.pt"
    state_dict = read_state_dict(weights)  # names a bad file in one line
    payload = torch.load(weights, map_location="cpu", weights_only=True)
    inputs = _weights_inputs(payload, weights, metrics.get("dataset"))
    return arch, state_dict, provenance, folder / "export", inputs


def _formats(text: str) -> tuple[str, ...]:
    from mbnas.export import FORMATS

    names = tuple(f.strip() for f in text.split(",") if f.strip())
    for name in names:
        if name not in FORMATS:
            raise argparse.ArgumentTypeError(f"{name!r} is not a format; choose from "
                                             f"{', '.join(FORMATS)}")
    if not names:
        raise argparse.ArgumentTypeError(f"name at least one of {', '.join(FORMATS)}")
    return names


# --- entry point ---------------------------------------------------------------


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mbnas", description="Neural architecture search over MobileNets.")
    from mbnas._version import __version__

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
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("baseline", help="MobileNet V1/V2/V3 at published widths under the proxy",
                       description="Train V1 (1.0, 0.75, 0.5, 0.25), V2 (1.4, 1.0, 0.75, "
                                   "0.5, 0.35) and V3 (Large, Small) under the proxy protocol "
                                   "and report them beside "
                                   "the papers' figures, with the proxy's fidelity (Kendall's "
                                   "tau against ImageNet top-1).")
    add_protocol_arguments(p)
    p.add_argument("--out", help="output folder (default runs/baselines/<dataset>)")
    p.add_argument("--models", help="a subset, e.g. mobilenet_v2@1,mobilenet_v1@0.5")
    p.set_defaults(func=_cmd_baseline)

    p = sub.add_parser("fidelity", help="how far a proxy protocol can be trusted",
                       description="Train a panel (the canonical networks and members of "
                                   "the space near a budget) at several seeds under the "
                                   "protocol; report the seed spread, Kendall's tau against "
                                   "a higher-fidelity reference and against ImageNet top-1. "
                                   "Rerunning the same command skips finished trainings.")
    add_protocol_arguments(p)
    p.add_argument("--seeds", type=_seeds, default=(0, 1),
                   help="seeds to train each architecture at (default 0,1)")
    p.add_argument("--models", help="canonical networks, e.g. mobilenet_v2@1,mobilenet_v1@0.5 "
                                    "or none (default: all of mbnas baseline's)")
    p.add_argument("--panel-budget", type=_budget, default=300_000_000,
                   help="space members are drawn within 15%% below this many MACs "
                        "(default 300M)")
    p.add_argument("--panel-size", type=_nonneg_int, default=8,
                   help="members of the space in the panel (default 8)")
    p.add_argument("--panel-seed", type=_nonneg_int, default=0,
                   help="seed of the draw of space members (default 0)")
    p.add_argument("--space", help="search space: a .yaml file or a name under "
                                   "search_spaces/ (default mobilenet)")
    p.add_argument("--reference", help="reference file (default: the one shipped for the "
                                       "data set, if any; none for none)")
    p.add_argument("--save-reference", metavar="FILE",
                   help="also write every training in --out (this command's and those "
                        "of earlier commands into the same folder) as a reference file")
    p.add_argument("--jobs", type=_positive_int, default=1,
                   help="trainings at a time, in worker processes (default 1); "
                        "set --threads too")
    p.add_argument("--test", action="store_true", help="also measure test accuracy")
    p.add_argument("--out", help="output folder (default runs/fidelity/DATASET-SUBSETxEPOCHS)")
    p.set_defaults(func=_cmd_fidelity)

    from mbnas.arch.seeds import REFERENCES
    from mbnas.search.confirm import ConfirmSettings
    from mbnas.search.settings import KEEP_WEIGHTS, OBJECTIVES, SAMPLERS, SearchSettings

    p = sub.add_parser("search", help="search the space for the best network within a budget",
                       description="Optuna proposes architectures within a multiply-add "
                                   "budget; Ray Tune trains their proxies in parallel. "
                                   "Rerunning the same command resumes the run.")
    p.add_argument("--budget", type=_budget, required=True,
                   help="MACs (papers' convention) on the target spec: 300M, 0.3G, 300e6")
    p.add_argument("--name", help="run name under --runs-dir (default search-<budget>)")
    p.add_argument("--runs-dir", default="runs", help="where runs live (default runs/)")
    p.add_argument("--space", help="search space: a .yaml file or a name under "
                                   "search_spaces/ (default mobilenet)")
    p.add_argument("--trials", type=_positive_int, default=SearchSettings.trials,
                   help="total search trials, counting those of earlier runs "
                        f"(default {SearchSettings.trials})")
    p.add_argument("--objective", choices=OBJECTIVES, default=SearchSettings.objective,
                   help="accuracy under the budget (default), or pareto: accuracy and MACs")
    p.add_argument("--sampler", choices=SAMPLERS, default=SearchSettings.sampler,
                   help=f"Optuna sampler (default {SearchSettings.sampler})")
    p.add_argument("--resolution", type=_positive_int,
                   help="target input resolution for pricing (default: the space's, 224)")
    p.add_argument("--num-classes", type=_positive_int,
                   help=f"target classes for pricing (default {SearchSettings.num_classes})")
    p.add_argument("--concurrency", type=_positive_int, default=SearchSettings.concurrency,
                   help=f"trials at a time (default {SearchSettings.concurrency})")
    p.add_argument("--cpus-per-trial", type=_positive_float,
                   help="CPUs per trial (default: all CPUs / concurrency)")
    p.add_argument("--gpus-per-trial", type=_fraction,
                   help="GPUs per trial, fractions allowed (default 1 where GPUs exist)")
    p.add_argument("--address", help="join a Ray cluster: auto, host:port or ray://host:port")
    p.add_argument("--early-stopping", action=argparse.BooleanOptionalAction,
                   default=SearchSettings.early_stopping,
                   help="stop trials that rank in the lower half after epoch 1 or 2 (ASHA). "
                        "Off by default: on the default 3-epoch proxy the early epochs rank "
                        "candidates too poorly (README, 'Early stopping')")
    p.add_argument("--references", type=_references, default=None,
                   help="canonical networks trained at width 1.0 beside the search as "
                        f"references (default: those of {','.join(REFERENCES)} within the "
                        "budget; 'none' for none)")
    p.add_argument("--keep-weights", default=KEEP_WEIGHTS, metavar="POLICY",
                   help="which finished trials keep their trained weights: all, none, or "
                        f"best:K, the K most accurate plus seeds and references (default "
                        f"{KEEP_WEIGHTS})")
    c = p.add_argument_group("confirmation (after the search: the best candidates and the "
                             "widest V1 and V2 within budget, retrained at several seeds)")
    c.add_argument("--confirm-top", type=_nonneg_int, default=ConfirmSettings.top,
                   help=f"search candidates to confirm (default {ConfirmSettings.top})")
    c.add_argument("--confirm-seeds", type=_int_at_least(2), default=ConfirmSettings.seeds,
                   help=f"seeds per architecture (default {ConfirmSettings.seeds})")
    c.add_argument("--confirm-epochs", type=_positive_int,
                   help=f"epochs (default {ConfirmSettings.epoch_factor:g}x --epochs, "
                        "rounded up)")
    c.add_argument("--confirm-subset", type=_positive_int,
                   help="training images (default: the search's --subset)")
    c.add_argument("--no-confirm", action="store_true",
                   help="crown the best proxy accuracy without confirming it")
    p.add_argument("--inject-faults", type=_faults, help=argparse.SUPPRESS)
    add_protocol_arguments(p)
    p.set_defaults(func=_cmd_search)

    p = sub.add_parser("show", help="a run's trials, winner and accuracy-vs-MACs plot")
    p.add_argument("run", metavar="RUN", help="run folder, e.g. runs/search-300M")
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser("export", help="write an architecture as a standalone PyTorch model",
                       description="Write model.py (needs only torch), weights.pt and "
                                   "arch.json; optionally TorchScript and ONNX.  SOURCE is a "
                                   "run folder (its best or --trial N, with the trial's "
                                   "trained proxy weights), a seed name, a spec file or an "
                                   "encoded string (freshly initialised weights).")
    p.add_argument("source", metavar="SOURCE")
    p.add_argument("--trial", default="best",
                   help="for a run: best (default), a trial number or a reference's name")
    p.add_argument("--target", action="store_true",
                   help="for a run or a `mbnas train` folder: export the priced target spec "
                        "with fresh weights instead of the trained proxy network")
    p.add_argument("--out", metavar="DIR", help="folder to write (default under the run, "
                                                "or runs/export/NAME)")
    p.add_argument("--format", type=_formats, default=("py", "pt"),
                   help="comma-separated: py, pt, torchscript, onnx (default py,pt)")
    p.add_argument("--class-name", default="MobileNet", help="name of the model class")
    p.add_argument("--width", type=_positive_float,
                   help="width multiplier (for a spec, or with --target: trained weights fix "
                        "their network)")
    p.add_argument("--resolution", type=_positive_int, help="input resolution (as --width)")
    p.add_argument("--num-classes", type=_positive_int, help="classifier outputs (as --width)")
    p.set_defaults(func=_cmd_export)
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
