"""Lossless text and file forms of an :class:`~mbnas.arch.spec.Arch`.

The one-line form is a comma-separated list of items in the spirit of timm's
block strings, for example MobileNetV2::

    net_w1.0_r224_n1000_div8,stem_k3_s2_c32,ir_r1_k3_s1_e1_c16,
    ir_r2_k3_s2_e6_c24,...,ir_r1_k3_s1_e6_c320,head_c1280

Items (tokens joined by ``_``):

- ``net``: ``w`` width, ``r`` input resolution, ``n`` classes, ``div8`` or ``trunc``
  (channel rounding); optional, defaults ``w1.0_r224_n1000_div8``.
- ``stem``: ``k`` kernel, ``s`` stride, ``c`` channels.
- stages, one item each, named by their block kind (``ds``, ``ir``; see
  :mod:`mbnas.blocks`): ``r`` repeats, ``k`` kernel, ``s`` stride of the first block,
  the kind's own options (``ir``: ``e`` expansion ratio or ``x`` expanded channels;
  ``se`` squeeze-and-excitation), ``c`` channels, ``noskip`` (no shortcut).
- ``head``: ``c`` channels of the last 1x1 conv, ``f`` units of the hidden fully
  connected layer after pooling (V3); absent when there is none.

Any item but ``net`` takes ``relu``, ``relu6`` (the default) or ``hswish`` as activation.
The file form (YAML or JSON) holds the same fields by name.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import asdict
from pathlib import Path

import yaml

from mbnas.arch.kinds import OPTIONS, kind, stage_kinds
from mbnas.arch.spec import ACTIVATIONS, Arch, Head, Stage, Stem, resolve
from mbnas.arch.yamlfile import parse_yaml, read_text
from mbnas.errors import MbnasError

_ROUNDING_TOKENS = {"div8": "divisible8", "trunc": "truncate"}
_ROUNDING_NAMES = {v: k for k, v in _ROUNDING_TOKENS.items()}
_TOKEN = re.compile(r"^([a-z]+)(\d.*)?$")
EXAMPLE = "stem_k3_s2_c32,ir_r1_k3_s1_e1_c16,ir_r2_k3_s2_e6_c24,head_c1280"


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() and "." not in text else value


def _act(activation: str) -> list[str]:
    return [] if activation == "relu6" else [activation]


def encode_stage(stage: Stage) -> str:
    parts = [stage.block, f"r{stage.repeats}", f"k{stage.kernel}", f"s{stage.stride}",
             *kind(stage.block).encode_options(stage), f"c{stage.channels}"]
    if not stage.shortcut:
        parts.append("noskip")
    return "_".join(parts + _act(stage.activation))


def encode(arch: Arch) -> str:
    """The one-line form of ``arch``; ``decode(encode(arch)) == arch``."""
    net = f"net_w{arch.width!r}_r{arch.resolution}_n{arch.num_classes}_" + _ROUNDING_NAMES[
        arch.rounding
    ]
    stem = arch.stem
    items = [net, "_".join([f"stem_k{stem.kernel}_s{stem.stride}_c{stem.channels}",
                            *_act(stem.activation)])]
    items += [encode_stage(s) for s in arch.stages]
    if arch.head is not None:
        fc = [f"f{arch.head.fc}"] if arch.head.fc is not None else []
        items.append("_".join([f"head_c{arch.head.channels}", *fc,
                               *_act(arch.head.activation)]))
    return ",".join(items)


def _parse_item(item: str, numeric: dict[str, str], flags: dict[str, tuple[str, object]]):
    """Split ``item`` into keyword arguments: numeric tokens and bare flags."""
    kwargs: dict[str, object] = {}
    for token in item.split("_")[1:]:
        if token in flags:
            name, value = flags[token]
            kwargs[name] = value
            continue
        match = _TOKEN.match(token)
        if not match or match.group(1) not in numeric or match.group(2) is None:
            allowed = [f"{k}<number>" for k in numeric] + list(flags)
            raise MbnasError(
                f"in {item!r}: unknown token {token!r}; allowed tokens: {', '.join(allowed)}"
            )
        key, raw = match.groups()
        try:
            kwargs[numeric[key]] = _number(raw)
        except ValueError:
            raise MbnasError(f"in {item!r}: {token!r} is not a number after {key!r}") from None
    return kwargs


_ACT_FLAGS = {a: ("activation", a) for a in ACTIVATIONS}
_NET = ({"w": "width", "r": "resolution", "n": "num_classes"},
        {tok: ("rounding", name) for tok, name in _ROUNDING_TOKENS.items()})
_STEM = ({"k": "kernel", "s": "stride", "c": "channels"}, _ACT_FLAGS)
_HEAD = ({"c": "channels", "f": "fc"}, _ACT_FLAGS)


def _stage_grammar(block: str):
    """The tokens a stage of kind ``block`` takes: the common ones and the kind's own."""
    block_kind = kind(block)
    return ({"r": "repeats", "k": "kernel", "s": "stride", **block_kind.numeric_tokens,
             "c": "channels"},
            {**block_kind.flag_tokens, "noskip": ("shortcut", False),
             "skip": ("shortcut", True), **_ACT_FLAGS})


def _build(item: str, cls, grammar, **fixed):
    kwargs = _parse_item(item, *grammar)
    try:
        return cls(**fixed, **kwargs)
    except MbnasError as err:
        raise MbnasError(f"in {item!r}: {err}") from None
    except TypeError:  # a required field is missing
        raise MbnasError(f"in {item!r}: the channels token 'c<number>' is required") from None


def decode(text: str) -> Arch:
    """Parse the one-line form (see the module docstring)."""
    if not isinstance(text, str) or not text.strip():
        raise MbnasError(f"empty architecture string; expected something like {EXAMPLE!r}")
    items = [i.strip() for i in text.strip().split(",") if i.strip()]
    net: dict = {}
    stem = Stem()
    stages: list[Stage] = []
    head = None
    for pos, item in enumerate(items):
        prefix = item.split("_", 1)[0]
        if prefix == "net" and pos == 0:
            net = _parse_item(item, *_NET)
        elif prefix == "stem" and not stages and head is None:
            stem = _build(item, Stem, _STEM)
        elif prefix in stage_kinds() and head is None:
            stages.append(_build(item, Stage, _stage_grammar(prefix), block=prefix))
        elif prefix == "head" and stages and head is None:
            head = _build(item, Head, _HEAD)
        else:
            raise MbnasError(
                f"unexpected item {item!r} at position {pos + 1}; expected the order "
                f"[net_...], [stem_...], one or more stages "
                f"({', '.join(k + '_...' for k in stage_kinds())}), [head_...], "
                f"e.g. {EXAMPLE!r}"
            )
    if not stages:
        raise MbnasError(f"no stage ({', '.join(k + '_' for k in stage_kinds())}) in "
                         f"{text!r}; e.g. {EXAMPLE!r}")
    try:
        return Arch(stages=tuple(stages), stem=stem, head=head, **net)
    except MbnasError as err:
        raise MbnasError(f"in {items[0]!r}: {err}") from None


# --- file form --------------------------------------------------------------

_FILE_KEYS = {"width", "resolution", "num_classes", "rounding", "stem", "stages", "head"}
_IGNORED_KEYS = {"name", "description", "reference"}


def to_dict(arch: Arch) -> dict:
    """The file form of ``arch`` as plain JSON-ready data."""
    data = asdict(arch)
    # Options a stage does not use are left out (expansion of a ds block, no SE ...).
    data["stages"] = [
        {k: v for k, v in s.items()
         if not (k in OPTIONS and v == OPTIONS[k]
                 and (k != "expansion" or k not in kind(s["block"]).options))}
        for s in data["stages"]
    ]
    if data["head"] is not None and data["head"]["fc"] is None:
        del data["head"]["fc"]
    return data


def _section(data, cls, required: set[str] = frozenset(), prefix: str = "", **fixed):
    where = prefix.rstrip(".") or cls.__name__.lower()
    if not isinstance(data, dict):
        raise MbnasError(f"{where}: expected a mapping of fields, got {data!r}")
    allowed = set(cls.__dataclass_fields__) - set(fixed)
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise MbnasError(f"{where}: unknown key {unknown[0]!r}; allowed keys: "
                         f"{', '.join(sorted(allowed))}")
    missing = sorted(required - set(data))
    if missing:
        raise MbnasError(f"{where}: missing key {missing[0]!r}")
    try:
        return cls(**fixed, **data)
    except MbnasError as err:
        raise MbnasError(f"{prefix}{err}") from None


def from_dict(data, where: str = "spec") -> Arch:
    """Build an :class:`Arch` from its file form, naming any bad key."""
    try:
        return _from_dict(data)
    except MbnasError as err:
        raise MbnasError(f"{where}: {err}") from None


def _from_dict(data) -> Arch:
    if not isinstance(data, dict):
        raise MbnasError(f"expected a mapping with a 'stages' list, got {type(data).__name__}")
    unknown = sorted(set(data) - _FILE_KEYS - _IGNORED_KEYS)
    if unknown:
        raise MbnasError(f"unknown key {unknown[0]!r}; allowed keys: "
                         f"{', '.join(sorted(_FILE_KEYS))}")
    raw_stages = data.get("stages")
    if not isinstance(raw_stages, list) or not raw_stages:
        raise MbnasError("'stages' must be a non-empty list of stages")
    stages = tuple(
        _section(s, Stage, required={"block", "channels"}, prefix=f"stages[{i}].")
        for i, s in enumerate(raw_stages)
    )
    kwargs = {k: data[k] for k in ("width", "resolution", "num_classes", "rounding") if k in data}
    if data.get("stem") is not None:
        kwargs["stem"] = _section(data["stem"], Stem)
    if data.get("head") is not None:
        kwargs["head"] = _section(data["head"], Head)
    return Arch(stages=stages, **kwargs)


def load_file(path: str | Path) -> Arch:
    """Read a spec from a ``.yaml``/``.yml`` or ``.json`` file."""
    path = Path(path)
    text = read_text(path, "spec file")
    if path.suffix != ".json":
        return from_dict(parse_yaml(text, str(path)), where=str(path))
    try:
        data = json.loads(text, object_pairs_hook=functools.partial(_unique_pairs, path))
    except ValueError as err:
        if isinstance(err, MbnasError):
            raise
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise MbnasError(f"{path}: not valid JSON: {first}") from None
    return from_dict(data, where=str(path))


def _unique_pairs(path: Path, pairs: list[tuple[str, object]]) -> dict:
    """A JSON object, refusing a key given twice (json keeps the last one, issue 18)."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise MbnasError(f"{path}: duplicate key {key!r}; each key may appear once in an "
                             "object")
        seen.add(key)
    return dict(pairs)


def save_file(arch: Arch, path: str | Path) -> None:
    """Write ``arch`` in file form (JSON for ``.json``, YAML otherwise)."""
    path = Path(path)
    data = to_dict(arch)
    if path.suffix == ".json":
        path.write_text(json.dumps(data, indent=2) + "\n")
    else:
        path.write_text(f"# {encode(arch)}\n" + yaml.safe_dump(data, sort_keys=False))


@functools.lru_cache(maxsize=4096)
def network_key(encoding: str) -> tuple:
    """What identifies the network a spec builds: its resolved blocks (channels after the
    width multiplier and rounding; block names aside, so a stage split in two is the same
    network), the fully connected layers, resolution and classes."""
    net = resolve(decode(encoding))
    return (tuple(b[1:] for b in net.blocks), net.fcs(), net.fc_activation,
            net.arch.resolution)
