"""What a source exports: a run's trial, a ``mbnas train`` folder or a spec, with its
weights, where they came from (provenance) and what they expect of an image.

The choice the command line makes (the trained proxy network with its weights, or with
``target`` the priced target spec freshly initialised; width, resolution and classes only
where no trained weights fix them) lives here, so a Python user gets the same answer as
``mbnas export``.  A run's weights file is always the run's own (``runs.weights_path``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mbnas.arch.encoding import decode
from mbnas.arch.seeds import parse_arch, with_overrides
from mbnas.arch.spec import Arch
from mbnas.errors import MbnasError
from mbnas.export.inputs import Inputs
from mbnas.export.load import read_state_dict
from mbnas.outcome import TrialRecord

FRESH = "target spec, freshly initialised"
AS_TRAINED = ("trained proxy network (its first stride-2 layer at stride 1, see "
              "mbnas.training.proxy)")
TRAINED_FOLDER = ("trained by mbnas train (the network as trained: its first stride-2 layer "
                  "at stride 1, see mbnas.training.proxy)")


@dataclass(frozen=True)
class Exportable:
    """What :func:`mbnas.export.export` is given for one source."""

    arch: Arch
    state_dict: dict | None  # None: freshly initialised
    provenance: dict
    default_out: Path  # where the command writes it without --out
    inputs: Inputs | None = None


@dataclass(frozen=True)
class Modifiers:
    """--width, --resolution and --num-classes: they apply to a spec (a target spec
    included), never to trained weights, which fix the network."""

    width: float | None = None
    resolution: int | None = None
    num_classes: int | None = None

    def apply(self, arch: Arch) -> Arch:
        return with_overrides(arch, width=self.width, resolution=self.resolution,
                              num_classes=self.num_classes)

    def refuse(self, what: str, arch: Arch) -> None:
        given = [f"--{name.replace('_', '-')}" for name in ("width", "resolution",
                                                              "num_classes")
                 if getattr(self, name) is not None]
        if given:
            raise MbnasError(f"{given[0]} does not apply to {what}: they fix the network "
                             f"(width {arch.width:g}, {arch.resolution} px, {arch.num_classes} "
                             "classes); add --target to export the target spec with fresh "
                             f"weights and {' '.join(given)} applied")


def source_kind(source: str | Path) -> str:
    """What SOURCE names: a ``run``, a ``trained`` model's folder, another ``folder``, or a
    ``spec`` (seed name, spec file or encoded string)."""
    from mbnas.search.runs import is_run

    source = Path(source)
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


def exportable(source: str | Path, *, trial: str = "best", target: bool = False,
               modifiers: Modifiers = Modifiers()) -> Exportable:
    """What exporting ``source`` writes, as ``mbnas export SOURCE`` does."""
    from mbnas.search.runs import check_run

    kind = source_kind(source)
    if kind == "run":
        return from_run(source, trial=trial, target=target, modifiers=modifiers)
    if trial != "best":
        raise MbnasError(f"--trial applies to run folders; {str(source)!r} is not one")
    if kind == "trained":
        return from_trained(source, target=target, modifiers=modifiers)
    if kind == "folder":
        check_run(source)  # names what is missing
    if target:
        raise MbnasError(f"--target applies to run folders and `mbnas train` folders; "
                         f"{str(source)!r} is a spec, exported as given with fresh weights "
                         "(drop --target)")
    text = str(source)
    return Exportable(modifiers.apply(parse_arch(text)), None, {"source": text},
                      Path("runs/export") / Path(text).stem.split(",")[0][:40])


def trial_provenance(run: str | Path, record: TrialRecord) -> dict:
    """Where a run's trial comes from, as export and ``mbnas train RUN`` record it."""
    return {"run": str(run), "trial": record.label, "role": record.role_text,
            "proxy_val_acc": record.val_acc}


def from_run(run: str | Path, *, trial: str = "best", target: bool = False,
             modifiers: Modifiers = Modifiers()) -> Exportable:
    """A run's trial (``best``, a number or a reference's name): the network as trained
    with its proxy weights, or with ``target`` its target spec freshly initialised."""
    from mbnas.search.runs import pick_trial, weights_path

    record = pick_trial(run, trial)
    provenance = {**trial_provenance(run, record), "target_arch": record.arch,
                  "target_macs": record.macs}
    default_out = Path(run) / "export" / f"trial-{record.label}"
    if target:
        return Exportable(modifiers.apply(decode(record.arch)), None,
                          {**provenance, "weights": FRESH}, default_out)
    weights = weights_path(run, record.checkpoint)
    if weights is None or not weights.is_file():
        why = (record.weights if record.weights not in ("", "kept")
               else f"{weights} is missing" if weights else "none were saved")
        raise MbnasError(f"trial {record.label} of {str(run)!r} has no trained weights: "
                         f"{why}; add --target to export its spec with fresh weights")
    state_dict, payload = _read_weights(weights)
    arch = decode(payload["arch"])
    modifiers.refuse(f"trial {record.label}'s trained weights", arch)
    return Exportable(arch, state_dict, {**provenance, "weights": AS_TRAINED}, default_out,
                      weights_inputs(payload, weights))


def from_trained(folder: str | Path, *, target: bool = False,
                 modifiers: Modifiers = Modifiers()) -> Exportable:
    """A ``mbnas train`` folder: the network it trained with its weights (or with
    ``target`` its target spec, freshly initialised)."""
    folder = Path(folder)
    try:
        metrics = json.loads((folder / "metrics.json").read_text())
        arch = decode(metrics["proxy_arch"])
        target_arch = decode(metrics["arch"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise MbnasError(f"{folder}/metrics.json is not a `mbnas train` record: {err}") \
            from None
    provenance = {"trained": str(folder), "dataset": metrics.get("dataset"),
                  "val_acc": metrics.get("val_acc"), "test_acc": metrics.get("test_acc"),
                  "target_arch": metrics.get("arch"), **metrics.get("source", {})}
    if target:
        return Exportable(modifiers.apply(target_arch), None, {**provenance, "weights": FRESH},
                          folder / "export")
    modifiers.refuse(f"the weights trained in {str(folder)!r}", arch)
    weights = folder / "model.pt"
    state_dict, payload = _read_weights(weights)
    return Exportable(arch, state_dict, {**provenance, "weights": TRAINED_FOLDER},
                      folder / "export", weights_inputs(payload, weights, metrics.get("dataset")))


def _read_weights(path: Path) -> tuple[dict, dict]:
    """The state_dict in ``path`` (a bad file named in one line) and the whole payload."""
    import torch

    state_dict = read_state_dict(path)
    payload = torch.load(path, map_location="cpu", weights_only=True)
    return state_dict, payload if isinstance(payload, dict) else {}


def weights_inputs(payload: dict, weights: Path, dataset: str | None = None) -> Inputs:
    """What the weights in ``payload`` expect of an image; said to be unknown (never
    guessed) for files written before mbnas recorded it."""
    if "input" in payload:
        return Inputs.from_record(payload["input"])
    return Inputs.unknown(f"{weights.name} was written before mbnas recorded the training "
                          "images' normalisation with the weights", dataset=dataset)
