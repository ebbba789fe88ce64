"""The text of ``model.py``: the layers, each block kind's module, the ``Network`` class and
its initialisation copied from the modules ``mbnas.build`` runs (``inspect.getsource``, one
source for the network code); only the table of blocks, ``make_block``, ``preprocess`` and the
entry class are written here.  Black- and ruff-clean, torch only.
"""

from __future__ import annotations

import builtins
import inspect
import json
import keyword
import textwrap
import typing
from collections.abc import Iterable

from mbnas.arch.cost import count
from mbnas.arch.encoding import encode
from mbnas.arch.kinds import Block, kind
from mbnas.arch.spec import Arch, resolve
from mbnas.errors import MbnasError
from mbnas.export.inputs import Inputs, Normalisation
from mbnas.units import format_count

# Top-level names of the generated model.py: a class named like one would shadow it.
_GENERATED_NAMES = frozenset({"ACTIVATIONS", "BLOCKS", "BlockSpec", "CLASSES", "ConvBNAct",
                              "DepthwiseSeparable", "FC_ACTIVATION", "GRAY", "HIDDEN_FC",
                              "IMAGE_CHANNELS", "INPUT_NOTE", "InvertedResidual", "MEAN",
                              "NUM_CLASSES", "NamedTuple", "Network", "RESOLUTION", "STD",
                              "SqueezeExcite", "TABLE", "init_weights", "make_block", "nn",
                              "preprocess", "torch"})


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
