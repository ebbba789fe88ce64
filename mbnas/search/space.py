"""Search spaces: per-stage choices read from a YAML file, sampled define-by-run.

A space is data (``search_spaces/*.yaml``).  :meth:`SearchSpace.sample` asks a
``choose(name, choices)`` callback for each decision, so the same code serves
Optuna (``trial.suggest_categorical``), a replay of stored parameters, and plain
random sampling in tests.  Nothing here imports torch or Optuna.

Budgets: :meth:`SearchSpace.cheapest` gives the cheapest member's MACs, and
:meth:`SearchSpace.repair` walks an over-budget parameter set down, one choice at
a time, until it fits, so sampling never has to loop.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mbnas.arch.encoding import decode
from mbnas.arch.kinds import kind, stage_kinds
from mbnas.arch.spec import (
    ACTIVATIONS,
    KERNELS,
    NUM_CLASSES,
    ROUNDINGS,
    STRIDES,
    Arch,
    Head,
    Stage,
    Stem,
)
from mbnas.arch.yamlfile import parse_yaml, read_text
from mbnas.costs import MACS, Budget, Metric
from mbnas.errors import MbnasError

Choose = Callable[[str, Sequence], object]
Params = dict[str, object]

_STAGE_KEYS = ("block", "expansion", "kernel", "repeats", "channels", "stride", "shortcut",
               "se", "activation")
_TOP_KEYS = {"name", "description", "width", "resolution", "rounding", "activation",
             "output_stride", "stem", "head", "stages", "seeds"}


def _choices(where: str, value, allowed=None, *, number: bool = True,
             nullable: bool = False) -> tuple:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise MbnasError(f"{where}: the list of choices is empty")
    for v in values:
        if v is None and nullable:
            continue
        if allowed is not None:
            if isinstance(v, bool) != isinstance(allowed[0], bool) or v not in allowed:
                raise MbnasError(f"{where}: {v!r} is not allowed; choose from "
                                 f"{', '.join(map(str, allowed))}")
        elif number and (isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0):
            raise MbnasError(f"{where}: {v!r} is not allowed; give positive numbers")
    if len(set(values)) != len(values):
        raise MbnasError(f"{where}: choices repeat: {values}")
    return tuple(values)


def _integers(where: str, value) -> tuple[int, ...]:
    values = _choices(where, value)
    for v in values:
        if not isinstance(v, int):
            raise MbnasError(f"{where}: {v!r} is not allowed; give whole numbers")
    return values


@dataclass(frozen=True)
class StageChoices:
    block: tuple[str, ...]
    expansion: tuple[int | float, ...]
    kernel: tuple[int, ...]
    repeats: tuple[int, ...]
    channels: tuple[int, ...]
    stride: tuple[int, ...]
    shortcut: tuple[bool, ...]
    se: tuple[bool, ...] = (False,)
    activation: tuple[str, ...] = ("relu6",)


@dataclass(frozen=True)
class SearchSpace:
    """Choices for every stage and the global fields; see ``search_spaces/mobilenet.yaml``."""

    name: str
    stages: tuple[StageChoices, ...]
    width: tuple[float, ...]
    resolution: tuple[int, ...]
    stem_channels: tuple[int, ...]
    stem_kernel: tuple[int, ...]
    head: tuple[int | None, ...]
    rounding: str
    activation: tuple[str, ...]  # of the stem and the head
    output_stride: int
    stride_patterns: tuple[str, ...]
    seeds: tuple[tuple[str, str], ...] = ()  # (name, encoding) pairs, members of the space

    def with_widths(self, widths) -> SearchSpace:
        """This space with ``widths`` added to its width choices (a run adds its seeds'
        widths scaled to the budget, so that they are members), in ascending order after
        the file's own."""
        extra = sorted(set(widths) - set(self.width))
        return dataclasses.replace(self, width=self.width + tuple(extra)) if extra else self

    # --- sampling -------------------------------------------------------------

    def sample(self, choose: Choose) -> Params:
        """Take every decision through ``choose``; returns the parameters taken."""
        params: Params = {}

        def pick(name: str, choices: Sequence):
            if len(choices) == 1:  # not a decision: keep it out of the sampler
                return choices[0]
            params[name] = choose(name, choices)
            return params[name]

        pick("width", self.width)
        pick("resolution", self.resolution)
        pick("stem_channels", self.stem_channels)
        pick("stem_kernel", self.stem_kernel)
        pick("head", self.head)
        pick("activation", self.activation)
        pick("strides", self.stride_patterns)
        for i, st in enumerate(self.stages, start=1):
            options = kind(pick(f"s{i}_block", st.block)).options
            if "expansion" in options:
                pick(f"s{i}_expansion", st.expansion)
            pick(f"s{i}_kernel", st.kernel)
            pick(f"s{i}_repeats", st.repeats)
            pick(f"s{i}_channels", st.channels)
            pick(f"s{i}_shortcut", st.shortcut)
            if "se" in options:
                pick(f"s{i}_se", st.se)
            pick(f"s{i}_activation", st.activation)
        return params

    def arch(self, params: Params, *, resolution: int | None = None,
             num_classes: int = NUM_CLASSES) -> Arch:
        """The target spec for ``params`` (what :meth:`sample` returned)."""

        def get(name: str, choices: Sequence):
            if len(choices) == 1:
                return choices[0]
            if name not in params:
                raise MbnasError(f"parameter {name!r} is missing; this trial was not sampled "
                                 f"from space {self.name!r}")
            value = params[name]
            if value not in choices:
                raise MbnasError(f"parameter {name}={value!r} is not among the choices of "
                                 f"space {self.name!r}: {list(choices)}")
            return value

        strides = get("strides", self.stride_patterns)
        stages = []
        for i, st in enumerate(self.stages, start=1):
            block = get(f"s{i}_block", st.block)
            options = kind(block).options
            stages.append(Stage(
                block=block,
                channels=get(f"s{i}_channels", st.channels),
                repeats=get(f"s{i}_repeats", st.repeats),
                kernel=get(f"s{i}_kernel", st.kernel),
                stride=int(strides[i - 1]),
                expansion=get(f"s{i}_expansion", st.expansion) if "expansion" in options else 1,
                shortcut=get(f"s{i}_shortcut", st.shortcut),
                se=get(f"s{i}_se", st.se) if "se" in options else False,
                activation=get(f"s{i}_activation", st.activation),
            ))
        head = get("head", self.head)
        activation = get("activation", self.activation)
        stem_stride = self.output_stride // math.prod(int(s) for s in strides)
        return Arch(
            stages=tuple(stages),
            stem=Stem(channels=get("stem_channels", self.stem_channels),
                      kernel=get("stem_kernel", self.stem_kernel), stride=stem_stride,
                      activation=activation),
            head=None if head is None else Head(channels=head, activation=activation),
            width=get("width", self.width),
            resolution=resolution or get("resolution", self.resolution),
            num_classes=num_classes,
            rounding=self.rounding,
        )

    def params_of(self, arch: Arch) -> Params:
        """The parameters that give ``arch`` (a member of this space), as :meth:`sample` would."""
        if len(arch.stages) != len(self.stages):
            raise MbnasError(f"{len(arch.stages)} stages; space {self.name!r} has "
                             f"{len(self.stages)}")
        values = {"width": arch.width, "resolution": arch.resolution,
                  "stem_channels": arch.stem.channels, "stem_kernel": arch.stem.kernel,
                  "head": None if arch.head is None else arch.head.channels,
                  "activation": arch.stem.activation,
                  "strides": "".join(str(s.stride) for s in arch.stages)}
        for i, s in enumerate(arch.stages, start=1):
            values.update({f"s{i}_block": s.block, f"s{i}_expansion": s.expansion,
                           f"s{i}_kernel": s.kernel, f"s{i}_repeats": s.repeats,
                           f"s{i}_channels": s.channels, f"s{i}_shortcut": s.shortcut,
                           f"s{i}_se": s.se, f"s{i}_activation": s.activation})

        def replay(name: str, choices: Sequence):
            if values[name] not in choices:
                raise MbnasError(f"{name}={values[name]!r} is not among the choices "
                                 f"{list(choices)} of space {self.name!r}")
            return values[name]

        params = self.sample(replay)
        # Single-choice fields are not parameters; make sure they agree as well.
        rebuilt = self.arch(params, resolution=arch.resolution, num_classes=arch.num_classes)
        if rebuilt != arch:
            raise MbnasError(f"architecture is not a member of space {self.name!r}")
        return params

    # --- budgets --------------------------------------------------------------

    def decisions(self, params: Params) -> dict[str, tuple]:
        """Each decision active under ``params`` with its choices (expansions only for ir)."""
        out: dict[str, tuple] = {}

        def record(name: str, choices: Sequence):
            out[name] = tuple(choices)
            return params.get(name, choices[0])

        self.sample(record)
        return out

    def normalise(self, params: Params) -> Params:
        """``params`` with inactive decisions dropped and newly active ones at their first
        choice (after a block turns from ds into ir, say)."""
        return self.sample(lambda name, choices: params[name]
                           if params.get(name) in choices else choices[0])

    def cheapest(self, *, resolution: int | None = None, num_classes: int = NUM_CLASSES,
                 metric: Metric = MACS) -> Arch:
        """The member that costs least by ``metric`` (MACs: exact, by brute force over the
        few non-monotone decisions and the smallest choice of every monotone one; another
        metric, whose cost may hang on choices MACs ignore, such as the activation, then
        takes each remaining choice at its cheapest, one decision at a time)."""
        best: Params | None = None
        best_cost = math.inf

        def price(p: Params) -> float:
            return metric.price(self.arch(p, resolution=resolution, num_classes=num_classes))

        monotone_min = {"width": min(self.width), "resolution": min(self.resolution),
                        "stem_channels": min(self.stem_channels),
                        "stem_kernel": min(self.stem_kernel)}
        for i, st in enumerate(self.stages, start=1):
            monotone_min.update({f"s{i}_expansion": min(st.expansion),
                                 f"s{i}_kernel": min(st.kernel),
                                 f"s{i}_repeats": min(st.repeats),
                                 f"s{i}_channels": min(st.channels),
                                 f"s{i}_shortcut": st.shortcut[0],
                                 f"s{i}_se": min(st.se),  # False: SE only adds MACs
                                 f"s{i}_activation": st.activation[0]})
        blocks = [st.block for st in self.stages]
        for pattern, head, *block in itertools.product(self.stride_patterns, self.head, *blocks):
            params = {**monotone_min, "strides": pattern, "head": head,
                      "activation": self.activation[0],
                      **{f"s{i}_block": b for i, b in enumerate(block, start=1)}}
            c = price(params)
            if c < best_cost:
                best, best_cost = params, c
        assert best is not None  # the product above is never empty
        if metric is not MACS:
            for name, choices in self.decisions(best).items():
                for choice in choices:
                    trial = self.normalise(dict(best, **{name: choice}))
                    c = price(trial)
                    if c < best_cost:
                        best, best_cost = trial, c
        return self.arch(best, resolution=resolution, num_classes=num_classes)

    def repair(self, params: Params, budget: Budget | int, *, resolution: int | None = None,
               num_classes: int = NUM_CLASSES) -> Params:
        """Walk ``params`` down until the architecture fits ``budget`` (a :class:`Budget`,
        or a number of MACs).

        Each step changes one decision (a number to its neighbouring choice, a
        category to any other): to the change that alone brings the cost within budget
        while removing the least of it, or else to the one that removes the most (cost:
        the largest of cost / limit over the budget's limits).  Every step lowers the
        cost, so the walk ends; if even the cheapest member does not fit, the caller
        should have refused the budget already.
        """
        if not isinstance(budget, Budget):
            budget = Budget.of(macs=budget)
        params = dict(params)

        def load(p: Params) -> float:
            return budget.load(self.arch(p, resolution=resolution, num_classes=num_classes))

        current = load(params)
        while current > 1:
            moves = []
            for name, choices in self.decisions(params).items():
                for choice in _neighbours(choices, params.get(name)):
                    trial = self.normalise(dict(params, **{name: choice}))
                    c = load(trial)
                    if c < current:
                        moves.append((c, trial))
            if not moves:
                raise MbnasError(f"no member of space {self.name!r} fits a budget of "
                                 f"{budget.text()}")
            fitting = [m for m in moves if m[0] <= 1]
            current, params = (max(fitting, key=lambda m: m[0]) if fitting
                               else min(moves, key=lambda m: m[0]))
        return params


def _neighbours(choices: tuple, value) -> tuple:
    """The next smaller and larger number, or every other choice of a categorical."""
    if all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in choices) \
            and value in choices:
        ordered = sorted(choices)
        i = ordered.index(value)
        return tuple(ordered[j] for j in (i - 1, i + 1) if 0 <= j < len(ordered))
    return tuple(c for c in choices if c != value)


def _stride_patterns(stage_strides: list[tuple[int, ...]], total: int) -> tuple[str, ...]:
    patterns = ["".join(map(str, combo)) for combo in itertools.product(*stage_strides)
                if math.prod(combo) == total]
    return tuple(patterns)


def load_space(path: str | Path) -> SearchSpace:
    """Read a space file; errors name the key and what is allowed."""
    path = Path(path)
    data = parse_yaml(read_text(path, "search space"), str(path))
    try:
        return parse_space(data, default_name=path.stem)
    except MbnasError as err:
        raise MbnasError(f"{path}: {err}") from None


def parse_space(data, default_name: str = "space") -> SearchSpace:
    if not isinstance(data, dict):
        raise MbnasError("a search space is a mapping with a 'stages' list")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise MbnasError(f"unknown key {unknown[0]!r}; allowed keys: "
                         f"{', '.join(sorted(_TOP_KEYS))}")
    raw_stages = data.get("stages")
    if not isinstance(raw_stages, list) or not raw_stages:
        raise MbnasError("'stages' must be a non-empty list of per-stage choices")
    activation = _choices("activation", data.get("activation", ["relu6"]), ACTIVATIONS,
                          number=False)
    stages = []
    for i, raw in enumerate(raw_stages):
        where = f"stages[{i}]"
        if not isinstance(raw, dict):
            raise MbnasError(f"{where}: expected a mapping of choices, got {raw!r}")
        extra = sorted(set(raw) - set(_STAGE_KEYS))
        if extra:
            raise MbnasError(f"{where}: unknown key {extra[0]!r}; allowed keys: "
                             f"{', '.join(_STAGE_KEYS)}")
        if "channels" not in raw:
            raise MbnasError(f"{where}: missing key 'channels'")
        stages.append(StageChoices(
            block=_choices(f"{where}.block", raw.get("block", ["ir"]), stage_kinds(),
                           number=False),
            expansion=_choices(f"{where}.expansion", raw.get("expansion", [6])),
            kernel=_choices(f"{where}.kernel", raw.get("kernel", [3]), KERNELS),
            repeats=_integers(f"{where}.repeats", raw.get("repeats", [1])),
            channels=_integers(f"{where}.channels", raw["channels"]),
            stride=_choices(f"{where}.stride", raw.get("stride", [1]), STRIDES),
            shortcut=_choices(f"{where}.shortcut", raw.get("shortcut", [True]), (True, False),
                              number=False),
            se=_choices(f"{where}.se", raw.get("se", [False]), (False, True), number=False),
            activation=_choices(f"{where}.activation", raw.get("activation", list(activation)),
                                ACTIVATIONS, number=False),
        ))
    stem = data.get("stem") or {}
    head = data.get("head") or {}
    if not isinstance(stem, dict) or not isinstance(head, dict):
        raise MbnasError("'stem' and 'head' are mappings, e.g. stem: {channels: [32]}")
    output_stride = data.get("output_stride", 32)
    if isinstance(output_stride, bool) or output_stride not in (1, 2, 4, 8, 16, 32, 64):
        raise MbnasError(f"output_stride: {output_stride!r} is not allowed; "
                         "choose a power of two up to 64")
    stem_stride = 2 if output_stride > 1 else 1
    patterns = _stride_patterns([s.stride for s in stages], output_stride // stem_stride)
    if not patterns:
        raise MbnasError(
            f"no stride pattern reaches output_stride {output_stride}: the stem gives "
            f"{stem_stride} and the stages' stride choices give at most "
            f"{math.prod(max(s.stride) for s in stages)}; allow stride 2 in more stages"
        )
    rounding = data.get("rounding", "divisible8")
    if rounding not in ROUNDINGS:
        raise MbnasError(f"rounding: {rounding!r} is not allowed; choose one of "
                         f"{', '.join(ROUNDINGS)}")
    space = SearchSpace(
        name=str(data.get("name", default_name)),
        stages=tuple(stages),
        width=tuple(float(w) for w in _choices("width", data.get("width", [1.0]))),
        resolution=_integers("resolution", data.get("resolution", [224])),
        stem_channels=_integers("stem.channels", stem.get("channels", [32])),
        stem_kernel=_choices("stem.kernel", stem.get("kernel", [3]), KERNELS),
        head=_choices("head.channels", head.get("channels", [None]), nullable=True),
        rounding=rounding,
        activation=activation,
        output_stride=output_stride,
        stride_patterns=patterns,
    )
    seeds = data.get("seeds") or {}
    if not isinstance(seeds, dict):
        raise MbnasError("'seeds' maps a seed name to its encoding in this space")
    for name, text in seeds.items():
        try:
            space.params_of(decode(str(text)))
        except MbnasError as err:
            raise MbnasError(f"seeds.{name}: {err}") from None
    # Validate that every member can be built (e.g. resolution vs stride pattern).
    space.cheapest()
    return _with_seeds(space, tuple((str(k), str(v)) for k, v in seeds.items()))


def _with_seeds(space: SearchSpace, seeds: tuple[tuple[str, str], ...]) -> SearchSpace:
    import dataclasses

    return dataclasses.replace(space, seeds=seeds)


def default_space_path() -> Path:
    from mbnas.arch.seeds import spaces_dir

    return spaces_dir() / "mobilenet.yaml"


def resolve_space(text: str | None) -> SearchSpace:
    """A space by file path or by name under ``search_spaces/`` (default: mobilenet)."""
    from mbnas.arch.seeds import spaces_dir

    if not text:
        return load_space(default_space_path())
    path = Path(text)
    try:
        exists = path.exists()
    except OSError:  # a name the OS refuses (too long) is no file
        exists = False
    if not path.suffix and not exists:
        candidate = spaces_dir() / f"{text}.yaml"
        if candidate.exists():
            path = candidate
        else:
            names = sorted(p.stem for p in spaces_dir().glob("*.yaml"))
            raise MbnasError(f"unknown search space {text!r}; give a .yaml file or one of: "
                             f"{', '.join(names)}")
    return load_space(path)
