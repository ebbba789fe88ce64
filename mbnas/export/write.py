"""Writing an export folder: every file staged under a temporary name, then moved into place
at once; files of an earlier export this one does not write are removed.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
import warnings
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from mbnas.arch.cost import count
from mbnas.arch.encoding import encode
from mbnas.arch.spec import Arch
from mbnas.errors import MbnasError
from mbnas.export._names import CONVENTION, FILES, FORMATS, META, ONNX_OPSET
from mbnas.export.inputs import Inputs, _check_inputs
from mbnas.export.load import _load_weights
from mbnas.export.source import _provenance, _version, check_class_name, model_source
from mbnas.files import fsync, temp_path
from mbnas.nn.network import build


def check_formats(formats) -> tuple[str, ...]:
    if isinstance(formats, str):
        formats = (formats,)
    try:
        chosen = tuple(dict.fromkeys(formats))
    except TypeError:
        raise MbnasError(f"formats: expected a list of names from {', '.join(FORMATS)}, "
                         f"got {formats!r}") from None
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        what = f"unknown format {unknown[0]!r}" if unknown else "no format given"
        raise MbnasError(f"formats: {what}; choose from {', '.join(FORMATS)}")
    return chosen


def _require_onnx() -> None:
    for name in ("onnx", "onnxscript"):
        try:
            importlib.import_module(name)
        except ImportError:
            raise MbnasError(f"format 'onnx' needs the {name} package: "
                             "pip install mbnas[export]") from None


# --- writing ---------------------------------------------------------------------------


def _text_writer(text: str) -> Callable[[Path], None]:
    return lambda path: path.write_text(text, encoding="utf-8")


class _Staging:
    """Files written under temporary names, then moved into place all at once.

    Slow work (scripting, ONNX export) happens before any file in ``out_dir`` changes, and
    each move is an ``os.replace``, so a crash never leaves a half-written file.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.pending: list[tuple[Path, Path]] = []

    def write(self, name: str, writer: Callable[[Path], None]) -> Path:
        final = self.folder / name
        temp = temp_path(final)
        self.pending.append((temp, final))
        writer(temp)
        fsync(temp)
        return final

    def commit(self) -> None:
        for temp, final in self.pending:
            os.replace(temp, final)
        self.pending.clear()

    def discard(self) -> None:
        for temp, _ in self.pending:
            temp.unlink(missing_ok=True)
        self.pending.clear()


@contextmanager
def _quiet_exporters():
    """torch 2.13 warns that torch.jit is deprecated and logs torchvision's absence."""
    onnx_log = logging.getLogger("torch.onnx")
    level = onnx_log.level
    onnx_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", category=FutureWarning)
            yield
    finally:
        onnx_log.setLevel(level)


def _torchscript(model: nn.Module, example: torch.Tensor) -> tuple[torch.jit.ScriptModule, str]:
    with _quiet_exporters():
        try:
            return torch.jit.script(model), "script"
        except Exception:  # noqa: BLE001 - any scripting failure: fall back to tracing
            return torch.jit.trace(model, example), "trace"


def _save_script(module: torch.jit.ScriptModule, path: Path) -> None:
    with _quiet_exporters():
        torch.jit.save(module, str(path))


def _write_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    # The torch.export-based ("dynamo") exporter, torch 2.13's default: the TorchScript
    # exporter (dynamo=False) is deprecated and slated for removal.
    batch = torch.export.Dim("batch")
    with _quiet_exporters():
        program = torch.onnx.export(model, (example,), input_names=["input"],
                                    output_names=["logits"], opset_version=ONNX_OPSET,
                                    dynamic_shapes=({0: batch},), dynamo=True,
                                    verbose=False)
        program.save(str(path), external_data=False)


def _weights_model(arch: Arch, state_dict: dict | None) -> nn.Module:
    model = build(arch)
    if state_dict is not None:
        _load_weights(model, state_dict, f"state_dict does not fit {encode(arch)}")
    return model.eval()


def export(arch: Arch, out_dir: str | Path, *, formats: Iterable[str] = ("py", "pt"),
           class_name: str = "MobileNet", state_dict: dict | None = None,
           provenance: dict | None = None, inputs: Inputs | None = None) -> dict[str, Path]:
    """Write ``arch`` to ``out_dir`` as a standalone model; return ``{format: path}``.

    ``formats`` are any of :data:`FORMATS`; ``arch.json`` (key ``json``) is always written.
    ``state_dict`` is the trial's trained weights; without it the weights are freshly
    initialised, and ``arch.json`` says which.  ``inputs`` is what those weights expect of
    an image (default: :meth:`Inputs.untrained` for fresh weights, else
    :meth:`Inputs.unknown`).  The files of an earlier export into ``out_dir`` that this one
    does not write (named in its ``arch.json``) are removed; no other file is touched.
    """
    if not isinstance(arch, Arch):
        raise MbnasError(f"arch: expected an Arch, got {type(arch).__name__}; "
                         "use mbnas.parse_arch to read a seed name, spec file or string")
    chosen = check_formats(formats)
    check_class_name(class_name)
    if "onnx" in chosen:
        _require_onnx()
    if set(chosen) == {"py"}:
        weights_state = None  # no file holds weights
    else:
        weights_state = "initialised" if state_dict is None else "trained"
    provenance = _provenance(provenance, weights_state)
    inputs = _check_inputs(inputs, arch, state_dict)
    model = None if weights_state is None else _weights_model(arch, state_dict)
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise MbnasError(f"cannot create export folder {str(folder)!r}: "
                         f"{err.strerror or err}") from None

    example = torch.zeros(1, 3, arch.resolution, arch.resolution)
    earlier = _earlier_files(folder)
    staging = _Staging(folder)
    written: dict[str, Path] = {}
    details: dict[str, object] = {}
    try:
        for fmt in chosen:
            name = FILES[fmt]
            if fmt == "py":
                source = model_source(arch, class_name=class_name,
                                      weights_state=weights_state if "pt" in chosen else None,
                                      provenance=provenance, inputs=inputs)
                written[fmt] = staging.write(name, _text_writer(source))
            elif fmt == "pt":
                written[fmt] = staging.write(name, lambda p: torch.save(model.state_dict(), p))
            elif fmt == "torchscript":
                scripted, how = _torchscript(model, example)
                details["torchscript"] = how
                written[fmt] = staging.write(name, lambda p, m=scripted: _save_script(m, p))
            else:
                details["onnx"] = {"exporter": "torch.onnx.export(dynamo=True)",
                                   "opset": ONNX_OPSET, "input": "input", "output": "logits",
                                   "dynamic_axes": {"input": [0], "logits": [0]}}
                written[fmt] = staging.write(name, lambda p: _write_onnx(model, example, p))
        meta = _metadata(arch, class_name, weights_state, provenance, written, details,
                         inputs)
        written["json"] = staging.write(META, _text_writer(json.dumps(meta, indent=2) + "\n"))
        staging.commit()
        _remove_stale(folder, earlier - {p.name for p in written.values()})
    except OSError as err:
        staging.discard()
        raise MbnasError(f"cannot write the export to {str(folder)!r}: "
                         f"{err.strerror or err}") from None
    except BaseException:
        staging.discard()
        raise
    return written


def _earlier_files(folder: Path) -> set[str]:
    """The files an earlier export wrote to ``folder``, as its arch.json names them; only
    names an export writes count, so a hand-edited arch.json cannot remove a user's file."""
    try:
        files = json.loads((folder / META).read_text(encoding="utf-8")).get("files")
    except (OSError, ValueError, AttributeError):
        return set()
    if not isinstance(files, dict):
        return set()
    ours = set(FILES.values())
    return {name for name in files.values() if isinstance(name, str) and name in ours}


def _remove_stale(folder: Path, names: set[str]) -> None:
    for name in sorted(names):
        path = folder / name
        if path.is_file() and not path.is_symlink():
            path.unlink()


def _metadata(arch: Arch, class_name: str, weights_state: str | None, provenance: dict,
              written: dict[str, Path], details: dict, inputs: Inputs) -> dict:
    cost = count(arch)
    return {
        "encoding": encode(arch),
        "macs": cost.macs,
        "params": cost.params,
        "weights": cost.weights,
        "convention": CONVENTION,
        "width": arch.width,
        "resolution": arch.resolution,
        "num_classes": arch.num_classes,
        "input": inputs.to_dict(arch),
        "class_name": class_name,
        "weights_state": weights_state,
        "mbnas_version": _version(),
        "provenance": provenance,
        "files": {**{fmt: path.name for fmt, path in written.items()}, "json": META},
        **details,
    }


