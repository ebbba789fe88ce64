"""Export an architecture as a standalone PyTorch model, and load one back.

:func:`export` writes a folder that needs torch and nothing of mbnas:

- ``model.py`` (format ``py``): one readable source file with the resolved block table at
  the top, the block classes written out as in the papers, and the network class.  Its
  state_dict keys are those of :func:`mbnas.nn.network.build`, so weights move both ways.
- ``weights.pt`` (``pt``): the state_dict, trained if one is given, else freshly initialised.
- ``model.torchscript.pt`` (``torchscript``) and ``model.onnx`` (``onnx``, dynamic batch).
- ``arch.json``, always: encoding, cost, class name, where the weights came from, and
  what the weights expect of an image (``input``: size, channels, the training data's mean
  and std, class names; see :class:`Inputs`), which ``model.py``'s ``preprocess`` applies.

``model.py`` is generated from templates here rather than from ``inspect.getsource`` of
:mod:`mbnas.nn.network`: the exported file must stay black- and ruff-clean and self-contained
whatever formatting the builder has, and the tests check module for module that the two
agree (state_dict keys, outputs, MACs and parameters).
"""

from __future__ import annotations

import builtins
import dataclasses
import enum
import hashlib
import importlib
import importlib.util
import inspect
import json
import keyword
import logging
import math
import os
import secrets
import sys
import textwrap
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
_GENERATED_NAMES = frozenset({"ACTIVATIONS", "BLOCKS", "BlockSpec", "CLASSES", "ConvBNAct",
                              "DepthwiseSeparable", "FC_ACTIVATION", "GRAY", "HIDDEN_FC",
                              "IMAGE_CHANNELS", "INPUT_NOTE", "InvertedResidual", "MEAN",
                              "NUM_CLASSES", "NamedTuple", "Network", "RESOLUTION", "STD",
                              "SqueezeExcite", "TABLE", "init_weights", "make_block", "nn",
                              "preprocess", "torch"})


# --- what the weights expect of an image -------------------------------------------------


class Normalisation(str, enum.Enum):
    """Where an export's mean and std come from."""

    TRAINED = "trained"  # recorded from the training images with the weights
    UNKNOWN = "unknown"  # trained weights, but their file predates the record
    NONE = "none"  # freshly initialised weights: trained on no images


@dataclasses.dataclass(frozen=True)
class Inputs:
    """What an exported network's weights expect of an image: ``arch.json``'s ``input``
    and the constants of ``model.py`` that its ``preprocess`` applies.

    Training (:mod:`mbnas.data`) feeds ``(x / 255 - mean) / std`` of uint8 images at the
    network's resolution, gray repeated to three channels; ``mean`` and ``std`` are those
    of the training split, per channel, on the 0-1 scale.
    """

    normalisation: Normalisation
    dataset: str | None = None
    size: int | None = None  # side of the training images (the network's resolution)
    image_channels: int | None = None  # of the training images: 1 (gray) or 3
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    classes: tuple[str, ...] | None = None
    note: str = ""

    @classmethod
    def from_record(cls, record) -> Inputs:
        """The ``input`` entry of a weights file (see mbnas.training.proxy.weights_file)."""
        if not isinstance(record, dict):
            raise MbnasError(f"input: expected a dict (dataset, channels, size, mean, std, "
                             f"classes), got {type(record).__name__}")
        try:
            mean, std = _stats("mean", record["mean"]), _stats("std", record["std"])
            channels, size = int(record["channels"]), int(record["size"])
            classes = record.get("classes")
            classes = None if classes is None else tuple(str(c) for c in classes)
        except (KeyError, TypeError, ValueError) as err:
            raise MbnasError(f"input: expected dataset, channels, size, mean, std and "
                             f"classes, got {record!r} ({type(err).__name__}: {err})") from None
        if channels not in (1, 3) or len(mean) not in (1, channels) or len(std) != len(mean):
            raise MbnasError(f"input: {channels} channel(s) with mean {mean} and std {std}; "
                             "expected 1 or 3 channels and one mean and std per channel")
        if any(s <= 0 for s in std):
            raise MbnasError(f"input: std {std} is not allowed; every value must be over 0")
        dataset = record.get("dataset")
        return cls(Normalisation.TRAINED, dataset=None if dataset is None else str(dataset),
                   size=size, image_channels=channels, mean=mean, std=std, classes=classes,
                   note=f"from the {dataset} training images the weights were trained on")

    @classmethod
    def unknown(cls, why: str, *, dataset: str | None = None) -> Inputs:
        """Trained weights whose file does not say how their images were normalised."""
        return cls(Normalisation.UNKNOWN, dataset=dataset, note=why)

    @classmethod
    def untrained(cls) -> Inputs:
        """Freshly initialised weights: only scaling to 0-1, until trained on data."""
        return cls(Normalisation.NONE, mean=(0.0,), std=(1.0,),
                   note="none: the weights are freshly initialised, trained on no images; "
                        "preprocess only scales to 0-1 unless given the mean and std of "
                        "the images you train it on")

    def to_dict(self, arch: Arch) -> dict:
        return {"size": arch.resolution, "channels": 3, "image_channels": self.image_channels,
                "dataset": self.dataset, "normalisation": self.normalisation.value,
                "mean": _list(self.mean), "std": _list(self.std),
                "classes": _list(self.classes), "note": self.note,
                "preprocess": "model.preprocess(images): uint8 0-255 or float 0-1, "
                              "N x C x H x W or N x H x W, 1 or 3 channels -> "
                              f"float N x 3 x {arch.resolution} x {arch.resolution}, "
                              "(x - mean) / std"}


def _list(values):
    return None if values is None else list(values)


def _stats(what: str, values) -> tuple[float, ...]:
    out = tuple(float(v) for v in values)
    if not out or not all(math.isfinite(v) for v in out):
        raise ValueError(f"{what} must be finite numbers, got {values!r}")
    return out


def _check_inputs(inputs, arch: Arch, state_dict) -> Inputs:
    if inputs is None:
        return (Inputs.untrained() if state_dict is None else
                Inputs.unknown("unknown: no input description was given with the weights"))
    if not isinstance(inputs, Inputs):
        raise MbnasError(f"inputs: expected an mbnas.export.Inputs, got "
                         f"{type(inputs).__name__}")
    if inputs.size is not None and inputs.size != arch.resolution:
        raise MbnasError(f"inputs: the weights were trained on {inputs.size} px images but "
                         f"the network is at {arch.resolution} px; export the network as "
                         "trained (its proxy spec)")
    if inputs.classes is not None and len(inputs.classes) != arch.num_classes:
        raise MbnasError(f"inputs: {len(inputs.classes)} class names for a network with "
                         f"{arch.num_classes} outputs")
    return inputs


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


def _tuple(name: str, values) -> str:
    """``name = (values)`` as black writes it: on one line where it fits, else one item
    a line (black keeps a magic trailing comma)."""
    if values is None:
        return f"{name} = None"
    cells = [_cell(v) for v in values]
    line = f"{name} = ({cells[0]},)" if len(cells) == 1 else f"{name} = ({', '.join(cells)})"
    if len(line) <= 88:
        return line
    return f"{name} = (\n" + "".join(f"    {c},\n" for c in cells) + ")"


def _string(name: str, text: str) -> str:
    """``name = "text"``, split into implicitly joined parts where it is too long."""
    line = f"{name} = {_cell(text)}"
    if len(line) <= 88:
        return line
    parts, part = [], ""
    for word in text.split(" "):
        if part and len(_cell(part + word)) > 80:
            parts.append(part)
            part = ""
        part += word + " "
    parts.append(part[:-1])
    return f"{name} = (\n" + "".join(f"    {_cell(p)}\n" for p in parts) + ")"


def _input_constants(inputs: Inputs) -> str:
    if inputs.normalisation is Normalisation.TRAINED:
        gray = " (gray, repeated to 3)" if inputs.image_channels == 1 else ""
        head = (f"What the weights expect of an image, applied by preprocess(): trained on "
                f"{inputs.dataset} images of {inputs.image_channels} channel(s){gray}, "
                "normalised (x - MEAN) / STD per channel on the 0-1 scale.")
    elif inputs.normalisation is Normalisation.UNKNOWN:
        head = ("The normalisation these trained weights expect is UNKNOWN (not recorded "
                "with them): preprocess() needs mean= and std=, those of the training "
                "images on the 0-1 scale.")
    else:
        head = ("Freshly initialised weights, trained on no images: preprocess() only "
                "scales to 0-1 unless given the mean and std of the images you train it on.")
    return "\n".join([
        *_wrap(head, "# "),
        f"IMAGE_CHANNELS = {inputs.image_channels}  # of the training images; None: unknown",
        _tuple("MEAN", inputs.mean),
        _tuple("STD", inputs.std),
        _tuple("CLASSES", inputs.classes),
        _string("INPUT_NOTE", inputs.note),
    ])


# Written here, not copied: mbnas normalises whole data sets (mbnas.data.Batches), this
# takes a user's images; tests/test_export_preprocess.py checks the two agree.
_PREPROCESS = '''\
# ITU-R BT.601 luma: colour images turned gray for weights trained on gray ones.
GRAY = (0.299, 0.587, 0.114)


def preprocess(images: torch.Tensor, mean=None, std=None) -> torch.Tensor:
    """Raw images as the weights expect them: float N x 3 x RESOLUTION x RESOLUTION.

    ``images``: uint8 (0-255) or float (0-1), N x C x H x W or N x H x W, 1 or 3
    channels.  As in training: resized to RESOLUTION (bilinear, antialiased when
    shrinking; uint8 stays on its 256 levels), gray repeated to 3 channels (colour
    turned gray first where IMAGE_CHANNELS is 1), then (x - mean) / std per channel
    on the 0-1 scale, with MEAN and STD unless ``mean`` and ``std`` are given.
    """
    mean = MEAN if mean is None else mean
    std = STD if std is None else std
    if mean is None or std is None:
        raise ValueError(f"pass mean= and std=: {INPUT_NOTE}")
    x = images.unsqueeze(1) if images.dim() == 3 else images
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(
            "images: expected N x C x H x W or N x H x W with 1 or 3 channels, "
            f"got shape {tuple(images.shape)}"
        )
    if x.dtype == torch.uint8:
        x = x.float()
    elif x.is_floating_point():
        x = x.float() * 255
    else:
        raise ValueError(f"images: expected uint8 (0-255) or float (0-1): {x.dtype}")
    if x.shape[-2:] != (RESOLUTION, RESOLUTION):
        shrink = RESOLUTION < x.shape[-1]
        x = nn.functional.interpolate(
            x,
            size=(RESOLUTION, RESOLUTION),
            mode="bilinear",
            align_corners=False,
            antialias=shrink,
        )
        if images.dtype == torch.uint8:
            x = x.round().clamp(0, 255)
    if IMAGE_CHANNELS == 1 and x.shape[1] == 3:
        x = (x * torch.tensor(GRAY).view(1, 3, 1, 1)).sum(1, keepdim=True)
    mean = torch.tensor(mean, dtype=torch.float64).view(1, -1, 1, 1)
    std = torch.tensor(std, dtype=torch.float64).view(1, -1, 1, 1)
    # x * scale + shift = (x / 255 - mean) / std, in the float32 steps training takes
    scale, shift = (1 / (255 * std)).float(), (-mean / std).float()
    return (x * scale + shift).expand(-1, 3, -1, -1).contiguous()
'''


def _cell(value) -> str:
    """A literal as black writes it: double quotes, unless single ones need fewer escapes."""
    if not isinstance(value, str):
        return repr(value)
    if value.count('"') <= value.count("'"):
        return json.dumps(value)  # JSON escapes are Python escapes too
    body = "".join('"' if c == '"' else "\\'" if c == "'" else json.dumps(c)[1:-1]
                   for c in value)
    return f"'{body}'"


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


def _wrap(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(text, 88, initial_indent=indent, subsequent_indent=indent,
                         break_on_hyphens=False, break_long_words=False)


def _input_lines(inputs: Inputs, r: int) -> list[str]:
    raw = ("preprocess(images) takes raw images (uint8 0-255 or float 0-1, N x C x H x W or "
           f"N x H x W, 1 or 3 channels) to the float N x 3 x {r} x {r} the network takes")
    if inputs.normalisation is Normalisation.TRAINED:
        gray = ", gray repeated to 3 channels" if inputs.image_channels == 1 else ""
        lines = _wrap(f"Input: {raw}, as the weights were trained: on {inputs.dataset}, "
                      f"{inputs.image_channels}-channel images at {r}x{r}{gray}, normalised "
                      "(x - mean) / std per channel on the 0-1 scale with")
        lines += [_fit(f"    mean: {_docstring_value(list(inputs.mean))}"),
                  _fit(f"    std: {_docstring_value(list(inputs.std))}")]
    elif inputs.normalisation is Normalisation.UNKNOWN:
        lines = _wrap(f"Input: float N x 3 x {r} x {r}.  The normalisation the weights were "
                      f"trained with is UNKNOWN ({inputs.note}), so preprocess(images, "
                      "mean=..., std=...) needs the mean and std of the training images on "
                      "the 0-1 scale; it resizes and repeats gray to 3 channels.")
    else:
        lines = _wrap(f"Input: {raw}.  Normalisation: none, the weights being freshly "
                      "initialised: it only scales to 0-1 unless given mean= and std= of the "
                      "images you train the model on.")
    if inputs.classes is not None:
        lines += ["Classes (output i is CLASSES[i]):",
                  *_wrap(", ".join(_docstring_value(c) for c in inputs.classes), "    ")]
    return lines


def _docstring(arch: Arch, class_name: str, weights_state: str | None,
               provenance: dict, inputs: Inputs) -> str:
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
        *_input_lines(inputs, r),
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
        f"    from model import {class_name}, preprocess",
        "",
        f"    model = {class_name}()",
        '    model.load_state_dict(torch.load("weights.pt", weights_only=True))',
        "    model.eval()",
        f"    images = torch.zeros(1, {r}, {r}, dtype=torch.uint8)  # yours, any size",
        ("    logits = model(preprocess(images, mean=..., std=...))"
         if inputs.normalisation is Normalisation.UNKNOWN else
         "    logits = model(preprocess(images))"),
    ]
    body = "\n".join(line.rstrip() for line in lines)
    return f'"""{body}\n"""'


def _version() -> str:
    from mbnas._version import __version__

    return __version__


def model_source(arch: Arch, *, class_name: str = "MobileNet",
                 weights_state: str | None = None, provenance: dict | None = None,
                 inputs: Inputs | None = None) -> str:
    """The text of ``model.py`` for ``arch``: torch-only, black- and ruff-clean.
    ``inputs`` (default: untrained) is what ``preprocess`` applies."""
    from mbnas.nn import layers, network

    check_class_name(class_name)
    provenance = _provenance(provenance, weights_state)
    inputs = Inputs.untrained() if inputs is None else inputs
    net = resolve(arch)
    kinds = list(dict.fromkeys(b.kind for b in net.blocks))
    # The blocks' modules name SqueezeExcite whether or not a block uses it.
    shared = [_activations(), inspect.getsource(layers.ConvBNAct),
              inspect.getsource(layers.SqueezeExcite)]
    parts = [
        _docstring(arch, class_name, weights_state, provenance, inputs),
        "from typing import NamedTuple\n\nimport torch\nfrom torch import nn",
        f"RESOLUTION = {arch.resolution}  # input: 3 x RESOLUTION x RESOLUTION\n"
        f"NUM_CLASSES = {arch.num_classes}\n"
        f"HIDDEN_FC = {net.hidden_fc}  # units of the fully connected layer after pooling\n"
        f"FC_ACTIVATION = {_cell(net.fc_activation)}",
        _input_constants(inputs),
        f"{_HEADER_COMMENT}\n{_table(net.blocks)}",
    ]
    code = [_blockspec(), *shared, *(kind(k).module_source() for k in kinds),
            _make_block(kinds), inspect.getsource(network.Network),
            inspect.getsource(network.init_weights), _entry(class_name), _PREPROCESS]
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
