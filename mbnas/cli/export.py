"""``mbnas export``: a run's winner, a trained model or a spec as a standalone PyTorch
model (what each source exports: :mod:`mbnas.export.sources`)."""

from __future__ import annotations

import argparse

from mbnas.cli._args import (
    positive_float,
    positive_int,
)


def _cmd_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mbnas.export import export
    from mbnas.export.sources import Modifiers, exportable

    source = exportable(args.source, trial=args.trial, target=args.target,
                        modifiers=Modifiers(args.width, args.resolution, args.num_classes))
    out = Path(args.out) if args.out else source.default_out
    paths = export(source.arch, out, formats=args.format, class_name=args.class_name,
                   state_dict=source.state_dict, provenance=source.provenance,
                   inputs=source.inputs)
    weights = ("trained weights" if source.state_dict is not None
               else "freshly initialised weights")
    print(f"exported {args.class_name} to {out}/ ({', '.join(p.name for p in paths.values())}) "
          f"with {weights}")
    return 0


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


def add_parser(sub) -> None:
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
    p.add_argument("--width", type=positive_float,
                   help="width multiplier (for a spec, or with --target: trained weights fix "
                        "their network)")
    p.add_argument("--resolution", type=positive_int, help="input resolution (as --width)")
    p.add_argument("--num-classes", type=positive_int, help="classifier outputs (as --width)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return _cmd_export(args)
