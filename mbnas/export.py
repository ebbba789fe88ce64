"""Export an architecture as a standalone PyTorch model, and load one back.

:func:`export` writes a folder that needs torch and nothing of mbnas:

- ``model.py`` (format ``py``): one readable source file with the resolved block table at
  the top, the block classes written out as in the papers, and the network class.  Its
  state_dict keys are those of :func:`mbnas.nn.network.build`, so weights move both ways.
- ``weights.pt`` (``pt``): the state_dict, trained if one is given, else freshly initialised.
- ``model.torchscript.pt`` (``torchscript``) and ``model.onnx`` (``onnx``, dynamic batch).
- ``arch.json``, always: encoding, cost, class name, where the weights came from.

``model.py`` is generated from templates here rather than from ``inspect.getsource`` of
:mod:`mbnas.nn.network`: the exported file must stay black- and ruff-clean and self-contained
whatever formatting the builder has, and the tests check module for module that the two
agree (state_dict keys, outputs, MACs and parameters).
"""

from __future__ import annotations

import builtins
import hashlib
import importlib
import importlib.util
import inspect
import json
import keyword
import logging
import os
import secrets
import sys
import typing
import warnings
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from mbnas.arch.cost import count
from mbnas.arch.encoding import encode
from mbnas.arch.kinds import Block, kind
from mbnas.arch.spec import Arch, resolve
from mbnas.errors import MbnasError
from mbnas.nn.network import build
from mbnas.units import format_count

FORMATS = ("py", "pt", "torchscript", "onnx")
FILES = {"py": "model.py", "pt": "weights.pt", "torchscript": "model.torchscript.pt",
         "onnx": "model.onnx"}
META = "arch.json"
# Opset 18 is the oldest the torch.export-based exporter translates to natively; ONNX
# Runtime has run it since 1.14.
ONNX_OPSET = 18
CONVENTION = "MACs: convolutions + classifier, one per multiply-add"

# Top-level names of the generated model.py: a class named like one would shadow it.
_GENERATED_NAMES = frozenset({"ACTIVATIONS", "BLOCKS", "BlockSpec", "ConvBNAct",
                              "DepthwiseSeparable", "FC_ACTIVATION", "HIDDEN_FC",
                              "InvertedResidual", "NUM_CLASSES", "NamedTuple", "Network",
                              "RESOLUTION", "SqueezeExcite", "TABLE", "init_weights",
                              "make_block", "nn", "torch"})


# --- the generated model.py ------------------------------------------------------------
#
# One source for the network code: the layers, each block kind's module, the Network
# class and its initialisation are copied from the modules mbnas.build uses
# (inspect.getsource); only the table of blocks, make_block and the entry class are
# written here.

_HEADER_COMMENT = """\
# One row per block, in order: stem, stage<i>.<j> (block j of stage i), head.  Channel
# counts are resolved (width multiplier and rounding applied); k = kernel, s = stride,
# act = activation, se = squeeze-and-excitation width (0: none).  See BlockSpec."""

# The Block fields a module needs: everything but the feature-map size.
_ROW_FIELDS = tuple(f for f in Block._fields if f != "in_size")
_TABLE_LABELS = ("name", "kind", "in", "hidden", "out", "k", "s", "act", "residual", "se")


def _blockspec() -> str:
    hints = typing.get_type_hints(Block)
    fields = "\n".join(f"    {f}: {hints[f].__name__}" for f in _ROW_FIELDS)
    return ('class BlockSpec(NamedTuple):\n'
            '    """One row of TABLE: a block with every channel count fixed."""\n\n'
            f"{fields}\n\n\n"
            "BLOCKS = [BlockSpec(*row) for row in TABLE]\n")


def _activations() -> str:
    from mbnas.nn.layers import ACTIVATIONS

    items = ", ".join(f'"{name}": nn.{cls.__name__}' for name, cls in ACTIVATIONS.items())
    return f"ACTIVATIONS = {{{items}}}\n"


def _make_block(kinds: list[str]) -> str:
    """make_block(spec): one branch per kind used, with the arguments the kind's
    module takes (the same list mbnas.build passes)."""
    lines = ["def make_block(spec: BlockSpec) -> nn.Module:",
             '    """One row of TABLE as a module."""']
    for name in kinds:
        block_kind = kind(name)
        cls = block_kind.module_class().__name__
        lines += [f'    if spec.kind == "{name}":', f"        return {cls}(",
                  *(f"            spec.{a}," for a in block_kind.module_args),
                  *(f"            {k}=spec.{k}," for k in block_kind.module_keywords),
                  "        )"]
    lines.append('    raise ValueError(f"unknown block kind {spec.kind!r}")')
    return "\n".join(lines) + "\n"


def _entry(class_name: str) -> str:
    return f'''class {class_name}(Network):
    """The exported architecture: the blocks of TABLE, pooled and classified."""

    def __init__(self, num_classes: int = NUM_CLASSES, dropout: float = 0.0) -> None:
        super().__init__(
            [make_block(spec) for spec in BLOCKS],
            BLOCKS[-1].out_channels,
            num_classes,
            HIDDEN_FC,
            FC_ACTIVATION,
            dropout,
        )
'''


def _cell(value) -> str:
    # Double quotes, as black writes them.
    return json.dumps(value) if isinstance(value, str) else repr(value)


def _table(blocks: Iterable[Block]) -> str:
    """TABLE as aligned columns (numbers right, text left), kept so by ``# fmt: off``."""
    rows = [[_cell(getattr(b, f)) for f in _ROW_FIELDS] for b in blocks]
    labels = _TABLE_LABELS
    widths = [max(len(label), *(len(row[i]) for row in rows)) + 1
              for i, label in enumerate(labels)]
    numeric = {2, 3, 4, 5, 6, 9}

    def line(cells, comma: str) -> str:
        last = len(cells) - 1
        out = []
        for i, (cell, width) in enumerate(zip(cells, widths, strict=True)):
            text = cell + (comma if i < last else "")
            out.append(text.rjust(width) if i in numeric else text.ljust(width))
        return " ".join(out).rstrip()

    # "# " takes one column more than "(": drop one space after "name" to stay aligned.
    header = line(labels, " ")
    header = "    # " + header[: len(labels[0])] + header[len(labels[0]) + 1 :]
    body = [f"    ({line(row, ',')})," for row in rows]
    return "\n".join(["# fmt: off", "TABLE = [", header, *body, "]", "# fmt: on"])


def _docstring_value(value) -> str:
    # JSON keeps any quote, backslash or newline in a value from breaking the file.
    return json.dumps(value, sort_keys=True)


def _docstring_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)


def _fit(line: str, limit: int = 88) -> str:
    return line if len(line) <= limit else line[: limit - 4] + " ..."


def _docstring(arch: Arch, class_name: str, weights_state: str | None,
               provenance: dict) -> str:
    cost = count(arch)
    r = arch.resolution
    if weights_state is None:
        weights = "No weights.pt was exported with this file: the model starts freshly initialised."
    else:
        state = "trained" if weights_state == "trained" else "freshly initialised (untrained)"
        weights = f"Weights: weights.pt beside this file holds {state} weights."
    lines = [
        f"A MobileNet exported by mbnas {_version()} as standalone PyTorch (needs only torch).",
        "",
        "Architecture (mbnas one-line encoding)::",
        "",
        f"    {encode(arch)}",
        "",
        f"Width {arch.width!r}, input 3x{r}x{r}, {arch.num_classes} classes.",
        f"MACs: {cost.macs:,} ({format_count(cost.macs)}) multiply-adds at {r}x{r}.",
        f"Parameters: {cost.params:,} ({format_count(cost.params, 2)}); "
        f"conv and classifier weights: {cost.weights:,}.",
        "MACs count every convolution and the classifier, one per multiply-add (the",
        "MobileNet papers' convention); batch norm, activations, pooling and residual adds",
        "are not counted.  Parameters are every trainable tensor of this module.",
        "",
        weights,
        "Provenance (also in arch.json):",
        "",
    ]
    lines += [_fit(f"    {_docstring_key(str(k))}: {_docstring_value(v)}")
              for k, v in provenance.items()]
    lines += [
        "",
        "Usage::",
        "",
        "    import torch",
        f"    from model import {class_name}",
        "",
        f"    model = {class_name}()",
        '    model.load_state_dict(torch.load("weights.pt", weights_only=True))',
        "    model.eval()",
    ]
    body = "\n".join(line.rstrip() for line in lines)
    return f'"""{body}\n"""'


def _version() -> str:
    from mbnas._version import __version__

    return __version__


def model_source(arch: Arch, *, class_name: str = "MobileNet",
                 weights_state: str | None = None, provenance: dict | None = None) -> str:
    """The text of ``model.py`` for ``arch``: torch-only, black- and ruff-clean."""
    from mbnas.nn import layers, network

    check_class_name(class_name)
    provenance = _provenance(provenance, weights_state)
    net = resolve(arch)
    kinds = list(dict.fromkeys(b.kind for b in net.blocks))
    # The blocks' modules name SqueezeExcite whether or not a block uses it.
    shared = [_activations(), inspect.getsource(layers.ConvBNAct),
              inspect.getsource(layers.SqueezeExcite)]
    parts = [
        _docstring(arch, class_name, weights_state, provenance),
        "from typing import NamedTuple\n\nimport torch\nfrom torch import nn",
        f"RESOLUTION = {arch.resolution}  # input: 3 x RESOLUTION x RESOLUTION\n"
        f"NUM_CLASSES = {arch.num_classes}\n"
        f"HIDDEN_FC = {net.hidden_fc}  # units of the fully connected layer after pooling\n"
        f"FC_ACTIVATION = {_cell(net.fc_activation)}",
        f"{_HEADER_COMMENT}\n{_table(net.blocks)}",
    ]
    code = [_blockspec(), *shared, *(kind(k).module_source() for k in kinds),
            _make_block(kinds), inspect.getsource(network.Network),
            inspect.getsource(network.init_weights), _entry(class_name)]
    text = "\n\n".join(parts) + "\n\n\n" + "\n\n".join(c for c in code if c)
    while "\n\n\n\n" in text:
        text = text.replace("\n\n\n\n", "\n\n\n")
    return text


# --- checks ----------------------------------------------------------------------------


def check_class_name(class_name) -> None:
    """A class name model.py can define without shadowing anything it uses."""
    if not isinstance(class_name, str) or not class_name.isidentifier():
        raise MbnasError(f"class_name: {class_name!r} is not a Python identifier; "
                         "use a name like 'MobileNet' or 'FoundNet'")
    if keyword.iskeyword(class_name) or hasattr(builtins, class_name):
        raise MbnasError(f"class_name: {class_name!r} is a Python keyword or builtin; "
                         "use a name like 'MobileNet' or 'FoundNet'")
    if class_name in _GENERATED_NAMES:
        raise MbnasError(f"class_name: {class_name!r} is already used in model.py; avoid "
                         f"{', '.join(sorted(_GENERATED_NAMES))}")


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


def _provenance(provenance, weights_state: str | None) -> dict:
    if provenance is None:
        provenance = {}
    if not isinstance(provenance, dict):
        raise MbnasError(f"provenance: expected a dict (run, trial, accuracy, dataset ...), "
                         f"got {type(provenance).__name__}")
    try:
        data = json.loads(json.dumps(provenance))
    except (TypeError, ValueError) as err:
        raise MbnasError(f"provenance: must be JSON data (str, number, bool, list, dict): "
                         f"{err}") from None
    data.setdefault("mbnas_version", _version())
    if weights_state is not None:
        data.setdefault("weights", weights_state)
    return data


def _require_onnx() -> None:
    for name in ("onnx", "onnxscript"):
        try:
            importlib.import_module(name)
        except ImportError:
            raise MbnasError(f"format 'onnx' needs the {name} package: "
                             "pip install mbnas[export]") from None


# --- writing ---------------------------------------------------------------------------


def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _text_writer(text: str) -> Callable[[Path], None]:
    return lambda path: path.write_text(text, encoding="utf-8")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
        temp = _temp_path(final)
        self.pending.append((temp, final))
        writer(temp)
        _fsync(temp)
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


def _weights_model(arch: Arch, state_dict: dict | None) -> nn.Module:
    model = build(arch)
    if state_dict is not None:
        _load_weights(model, state_dict, f"state_dict does not fit {encode(arch)}")
    return model.eval()


def export(arch: Arch, out_dir: str | Path, *, formats: Iterable[str] = ("py", "pt"),
           class_name: str = "MobileNet", state_dict: dict | None = None,
           provenance: dict | None = None) -> dict[str, Path]:
    """Write ``arch`` to ``out_dir`` as a standalone model; return ``{format: path}``.

    ``formats`` are any of :data:`FORMATS`; ``arch.json`` (key ``json``) is always written.
    ``state_dict`` is the trial's trained weights; without it the weights are freshly
    initialised, and ``arch.json`` says which.  Files not being written are left alone.
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
    model = None if weights_state is None else _weights_model(arch, state_dict)
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise MbnasError(f"cannot create export folder {str(folder)!r}: "
                         f"{err.strerror or err}") from None

    example = torch.zeros(1, 3, arch.resolution, arch.resolution)
    staging = _Staging(folder)
    written: dict[str, Path] = {}
    details: dict[str, object] = {}
    try:
        for fmt in chosen:
            name = FILES[fmt]
            if fmt == "py":
                source = model_source(arch, class_name=class_name,
                                      weights_state=weights_state if "pt" in chosen else None,
                                      provenance=provenance)
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
        meta = _metadata(arch, class_name, weights_state, provenance, written, details)
        written["json"] = staging.write(META, _text_writer(json.dumps(meta, indent=2) + "\n"))
        staging.commit()
    except OSError as err:
        staging.discard()
        raise MbnasError(f"cannot write the export to {str(folder)!r}: "
                         f"{err.strerror or err}") from None
    except BaseException:
        staging.discard()
        raise
    return written


def _metadata(arch: Arch, class_name: str, weights_state: str | None, provenance: dict,
              written: dict[str, Path], details: dict) -> dict:
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
        "class_name": class_name,
        "weights_state": weights_state,
        "mbnas_version": _version(),
        "provenance": provenance,
        "files": {**{fmt: path.name for fmt, path in written.items()}, "json": META},
        **details,
    }


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
