"""Loading an export folder back: its metadata, its ``model.py`` as a module, its weights.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import sys
from pathlib import Path

import torch
from torch import nn

from mbnas.errors import MbnasError
from mbnas.export._names import FILES, META

# --- loading ---------------------------------------------------------------------------


def _missing(folder: Path, name: str, fmt: str) -> MbnasError:
    return MbnasError(f"cannot load {str(folder)!r}: it has no {name}; export it with "
                      f"formats including {fmt!r}")


def read_metadata(out_dir: str | Path) -> dict:
    """The ``arch.json`` of an export folder."""
    folder = Path(out_dir)
    if not folder.is_dir():
        raise MbnasError(f"cannot load {str(folder)!r}: no such folder")
    path = folder / META
    if not path.is_file():
        raise MbnasError(f"cannot load {str(folder)!r}: it has no {META}, so it is not an "
                         "mbnas export (write one with mbnas.export.export)")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise MbnasError(f"cannot read {str(path)!r}: {err}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("class_name"), str):
        raise MbnasError(f"{str(path)!r}: expected an object with a 'class_name' string")
    return meta


def import_model_file(path: str | Path):
    """Import an exported ``model.py`` by file path, as a uniquely named module.

    The module is registered in ``sys.modules`` (as ``mbnas_export_<hash of the path>``):
    torch.jit.script and pickle find a class's source and module through it.
    """
    path = Path(path).resolve()
    # One name per file: loading the same folder again replaces the module, never piles up.
    name = "mbnas_export_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        del sys.modules[name]
        raise MbnasError(f"cannot import {str(path)!r}: {type(err).__name__}: {err}") from None
    return module


def load(out_dir: str | Path) -> nn.Module:
    """The model exported to ``out_dir``, with its weights loaded, in eval mode."""
    folder = Path(out_dir)
    meta = read_metadata(folder)
    source, weights = folder / FILES["py"], folder / FILES["pt"]
    if not source.is_file():
        raise _missing(folder, source.name, "py")
    if not weights.is_file():
        raise _missing(folder, weights.name, "pt")
    class_name = meta["class_name"]
    cls = getattr(import_model_file(source), class_name, None)
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise MbnasError(f"{str(source)!r} defines no module class {class_name!r} "
                         f"(the class_name in {META})")
    model = cls()
    _load_weights(model, read_state_dict(weights),
                  f"cannot load {str(weights)!r} into {class_name}")
    return model.eval()


def read_state_dict(path: str | Path) -> dict:
    """The state_dict in ``path``: a bare one, or the ``model`` entry of a training checkpoint."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise MbnasError(f"cannot read weights {str(path)!r}: no such file") from None
    except Exception as err:  # noqa: BLE001 - torch raises many kinds for a bad file
        detail = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise MbnasError(f"cannot read weights {str(path)!r}: {detail}") from None
    if isinstance(data, dict) and isinstance(data.get("model"), dict):
        data = data["model"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor)
                                             for v in data.values()):
        raise MbnasError(f"{str(path)!r} holds no state_dict (a dict of tensors, or a "
                         "checkpoint with one under 'model')")
    return data


def state_dict_mismatch(model: nn.Module, state_dict) -> str | None:
    """What keeps ``state_dict`` out of ``model``, in one line; None when it fits."""
    if not isinstance(state_dict, dict):
        return f"expected a dict of tensors, got {type(state_dict).__name__}"
    expected = model.state_dict()
    problems = []
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    reshaped = [k for k in expected if k in state_dict
                and getattr(state_dict[k], "shape", None) != expected[k].shape]
    for keys, what in ((missing, "missing"), (unexpected, "unexpected"),
                       (reshaped, "of another shape")):
        if keys:
            problems.append(f"{len(keys)} key(s) {what}, e.g. {keys[0]!r}")
    return "; ".join(problems) or None


def _load_weights(model: nn.Module, state_dict, what: str) -> None:
    problem = state_dict_mismatch(model, state_dict)
    if problem is None:
        try:
            model.load_state_dict(state_dict)
        except (RuntimeError, TypeError) as err:
            problem = (str(err).strip().splitlines() or [type(err).__name__])[-1].strip()
    if problem is not None:
        raise MbnasError(f"{what}: {problem}")
