"""A latency table: milliseconds per block, measured on the device it will predict for.

Keys are whole blocks as the runtime executes them (nn-Meter's finding: a runtime fuses
conv + batch norm + activation, and a block's SE and shortcut with it, so the sum of
single operators misses what fusion saves): every field of a resolved block
(:class:`mbnas.arch.kinds.Block`) but its name, plus the classifier (pool and fully
connected layers).  How a block is timed is the table's ``method``: ``isolated`` (the
default) times each block as a network of its own, as FBNet's and once-for-all's tables
do; ``context`` times it inside the whole networks of the build, each run of a network
split into its blocks' shares (ONNX Runtime's profiler, or a clock read as each block
starts in eager), so an entry is what the block costs where it runs, with its
neighbours' cache state and none of the conversions a graph pays at its edges.  A
network's predicted latency is the table's ``call`` entry (what a run costs besides its
blocks) plus each block's entry, less that per-call cost for an isolated block (it paid
a call of its own).  A part the table lacks is predicted from the parts it holds
(:mod:`mbnas.latency.fit`): a space has far more distinct blocks than a device can time,
so a table measures a sample of them and fills the gaps.

The file is JSON: ``meta`` (what it was measured on: runtime and its version, threads,
batch, resolution, CPU model, when), ``entries`` (key -> median and quartiles over
interleaved rounds, in ms) and ``networks`` (the build's networks timed end to end, by
encoding: what calibrates the sum of parts, :meth:`Table.calibration`), and ``holdout``:
how close the table comes to those networks, each held out (:class:`Holdout`).
Torch-free: a table is read and priced without building anything.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

from mbnas.arch.kinds import Block
from mbnas.arch.spec import Arch, Network, resolve
from mbnas.errors import MbnasError

FORMAT = 1
# PyTorch eager on the CPU ("torch") or on a CUDA GPU ("cuda": each call synchronised, so
# its time is what a caller waits for the result), and ONNX Runtime on the CPU.
RUNTIMES = ("onnxruntime", "torch", "cuda")
METHODS = ("context", "isolated")
CALL = "call"  # the per-call entry
# Which of an entry's figures a table predicts from (its ``meta.statistic``): the median of
# the rounds' medians, or their lower quartile, the speed the machine has when nothing
# disturbs it.  On a shared machine whose speed jumps between a fast and a slow state,
# disturbances only ever slow a round, and the lower quartile of five rounds is their
# second fastest: on the project's first tables it halved the error of a build network's
# sum of parts (docs/measurements.md#latency).  On a dedicated device the two differ by a
# few per cent.  Tables from before the field was recorded predict from the median.
STATISTICS = ("q1", "median")
# The timing protocol: ROUNDS interleaved rounds of each part (every part once per round,
# in turn), each round REPEATS calls and at least MIN_SECONDS.  On a shared machine a slow
# spell of a second or two moved single medians by 10-40% (bench/latency/); a figure taken
# over many rounds, seconds apart, is what the part costs.  The same calls cut into more,
# shorter rounds sample more moments: on the EPYC, 20 networks timed twice a few minutes
# apart repeated to 3.0% (93% within +-10%) as the lower quartile of 20 rounds of 5 calls,
# against 8.5% (55%) for 5 rounds of 20 calls, the protocol of earlier tables
# (bench/latency_protocol.py, bench/latency/protocol/).  A table records the protocol it
# was measured by (Meta.rounds, .repeats, .min_seconds); whatever is compared with it is
# timed by the same.
ROUNDS, REPEATS, MIN_SECONDS = 20, 5, 0.0125
# An entry whose interquartile range is more than this share of its median was measured
# on a machine too noisy to trust; the build says so, and keeps the entry marked.
NOISY = 0.10


def block_key(b: Block) -> str:
    """``ir:24-144-24:k3:s1:relu6:res:se0:56``: kind, channels in-hidden-out, kernel,
    stride, activation, shortcut, SE width, input size."""
    return (f"{b.kind}:{b.in_channels}-{b.hidden_channels}-{b.out_channels}:k{b.kernel}"
            f":s{b.stride}:{b.activation}:{'res' if b.residual else 'nores'}"
            f":se{b.se_channels}:{b.in_size}")


def classifier_key(net: Network) -> str:
    """``fc:1280-0-1000:relu6:7``: pooled features, hidden fc (0: none), classes, and the
    size of the feature map pooled."""
    return (f"fc:{net.features}-{net.hidden_fc}-{net.num_classes}:{net.fc_activation}"
            f":{net.blocks[-1].out_size}")


def keys(arch: Arch) -> list[tuple[str, str]]:
    """``(layer, key)`` for every part of ``arch`` a table times: each block, then the
    classifier."""
    net = resolve(arch)
    return [(b.name, block_key(b)) for b in net.blocks] + [("classifier",
                                                            classifier_key(net))]


@dataclass(frozen=True)
class Entry:
    """One measured part: median and quartiles over ``runs`` timed calls, in ms."""

    median_ms: float
    q1_ms: float
    q3_ms: float
    runs: int

    def ms(self, statistic: str) -> float:
        """The figure ``statistic`` (one of :data:`STATISTICS`) names."""
        return self.q1_ms if statistic == "q1" else self.median_ms

    @property
    def spread(self) -> float:
        """The interquartile range as a share of the median."""
        return (self.q3_ms - self.q1_ms) / self.median_ms if self.median_ms > 0 else math.inf

    @property
    def noisy(self) -> bool:
        return self.spread > NOISY


@dataclass(frozen=True)
class Meta:
    """What a table was measured on; a search refuses a table measured otherwise."""

    runtime: str
    runtime_version: str
    threads: int
    batch: int
    resolution: int
    cpu: str
    created: str = ""
    mbnas: str = ""
    method: str = "isolated"  # tables from before the method was recorded timed blocks alone
    # The reference network timed beside every entry (its encoding; "": none), and its
    # median over the first build: every entry is held at the speed it ran at then.
    canary: str = ""
    canary_ms: float = 0.0
    statistic: str = "median"  # see STATISTICS; a new build records "q1"
    # The protocol (ROUNDS above): interleaved rounds per entry, calls per
    # round and seconds per round at least.  Tables from before it was recorded: 5, 20, 0.05.
    rounds: int = 5
    repeats: int = 20
    min_seconds: float = 0.05
    # When its networks were last timed end to end again (``mbnas latency build
    # --recalibrate``; "": as built).
    recalibrated: str = ""


class Part(NamedTuple):
    """One row of a prediction: the layer, its table key, its ms less the per-call cost,
    and whether the table measured it (else the fit predicted it)."""

    layer: str
    key: str
    ms: float
    measured: bool = True


# With at least this many networks timed end to end (two per term), a table's calibration
# weighs its parts' edges too; with fewer, only a scale and an offset.
CALIBRATION_NETWORKS = 8


class Calibration(NamedTuple):
    """A network's end-to-end latency from its parts: ``scale`` times each part's ms,
    plus ``per_element`` ms per element of each part's input and ``per_weight`` ms per
    weight of it (:func:`mbnas.latency.fit.edges`), plus ``offset`` ms per call.  The
    edge terms were chosen by predicting each build network with the others' calibration
    (docs/measurements.md#latency)."""

    scale: float = 1.0
    offset: float = 0.0
    per_element: float = 0.0
    per_weight: float = 0.0

    def apply(self, ms: float, elements: float, weights: float) -> float:
        """A part's calibrated ms, before the offset."""
        return self.scale * ms + self.per_element * elements + self.per_weight * weights

    def describe(self) -> str:
        text = f"x{self.scale:.3f}, {self.offset:+.3f} ms per call"
        if self.per_element or self.per_weight:
            text += (f", {1e6 * self.per_element:+.3f} ms per million input elements and "
                     f"{1e6 * self.per_weight:+.3f} ms per million weights of each part")
        return text


def _edges_of(part: Part) -> tuple[float, float]:
    from mbnas.latency.fit import edges

    return edges(part.key)


def _edges(parts: list[Part]) -> tuple[float, float]:
    """The input elements and the weights of ``parts``, summed."""
    pairs = [_edges_of(p) for p in parts]
    return sum(e for e, _ in pairs), sum(w for _, w in pairs)


class _Candidate(NamedTuple):
    columns: tuple[int, ...]
    calibration: Calibration


# The calibrations a table chooses between, as columns of its networks' rows (sum of
# parts, input elements, weights, 1; then the measured ms): without the edges, and with
# them (on a tie, the first).
_CALIBRATIONS = ((0, 3), (0, 1, 2, 3))


def _solve(a, columns: tuple[int, ...]):
    """Least squares on relative error: the coefficients of ``columns`` of ``a``'s rows
    that best give their last column."""
    import numpy as np

    x, measured = a[:, columns], a[:, -1]
    scale = np.abs(x).max(axis=0)  # a well-conditioned problem
    return np.linalg.lstsq(x / scale / measured[:, None], np.ones(len(a)),
                           rcond=None)[0] / scale


def _fit_each(a) -> list[_Candidate | None]:
    """Each calibration of :data:`_CALIBRATIONS` the rows ``a`` are enough for, fitted
    (None where it came out unphysical: a scale of zero or less, or a prediction of zero
    or less for the smallest network)."""
    import numpy as np

    out = []
    for columns in _CALIBRATIONS:
        if len(columns) > 2 and len(a) < CALIBRATION_NETWORKS:
            continue
        terms = dict(zip(columns, _solve(a, columns), strict=True))
        c = Calibration(float(terms[0]), float(terms[3]), float(terms.get(1, 0.0)),
                        float(terms.get(2, 0.0)))
        smallest = a[np.argmin(a[:, 0])]
        ok = c.scale > 0 and c.apply(*smallest[:3]) + c.offset > 0
        out.append(_Candidate(columns, c) if ok else None)
    return out


def _left_out_error(a, columns: tuple[int, ...]) -> float:
    """The median relative error of each row of ``a`` predicted by the calibration
    ``columns`` fitted to the other rows."""
    import numpy as np

    errors = []
    for i in range(len(a)):
        rest = np.delete(a, i, axis=0)
        x = _solve(rest, columns)
        errors.append(abs(a[i, list(columns)] @ x / a[i, -1] - 1))
    return float(np.median(errors))


# A table checks itself on at least this many networks timed end to end (each held out,
# the others calibrate: three at least).
HOLDOUT_NETWORKS = 4


@dataclass(frozen=True)
class Holdout:
    """How close the table's predictions come to networks it never saw, as far as the
    table itself can say: each network it timed end to end predicted from the table
    without it (out of the calibration) and without the blocks no other of its networks
    has (predicted by the fit instead, as most of an unseen network's blocks are), against
    its own measured time.  ``entries`` and ``timed`` are the table's counts it was
    computed on: a table that has grown since computes it again."""

    networks: int  # the networks predicted (those the held-out table could still price)
    median_error: float  # the median of |predicted / measured - 1|
    within_10: float  # the share within +-10%
    median_signed: float  # the median of predicted / measured - 1 (under 0: too fast)
    worst: str  # the network furthest off (encoding) and its signed error
    worst_error: float
    entries: int
    timed: int

    def describe(self) -> str:
        return (f"its {self.networks} networks timed end to end, each predicted without "
                "itself in the calibration and without its own blocks (the fit predicts "
                "them, as it does most of an unseen network's), came out a median "
                f"{100 * self.median_error:.1f}% from their measured times, "
                f"{100 * self.within_10:.0f}% within ±10% (median signed error "
                f"{100 * self.median_signed:+.1f}%)")

    def to_json(self) -> dict:
        return asdict(self)


def _holdout_from_json(raw) -> Holdout | None:
    """A stored :class:`Holdout`, or None where there is none or it does not read as one
    (it is recomputed: nothing else of the table depends on it)."""
    try:
        h = Holdout(**raw)
    except TypeError:
        return None
    numbers = (h.median_error, h.within_10, h.median_signed, h.worst_error)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
               for v in numbers) or not isinstance(h.worst, str) or not all(
                   isinstance(v, int) and not isinstance(v, bool) and v >= 0
                   for v in (h.networks, h.entries, h.timed)):
        return None
    return h


@dataclass
class Table:
    meta: Meta
    entries: dict[str, Entry] = field(default_factory=dict)
    path: Path | None = None
    # Whole networks timed end to end (encoding -> entry): what calibrates the sum of parts.
    networks: dict[str, Entry] = field(default_factory=dict)
    # Predict the parts the table lacks from those it holds; False: refuse them.
    fill: bool = True
    _fit: tuple = field(default=(-1, None), init=False, repr=False, compare=False)
    _calibration: tuple = field(default=(-1, None), init=False, repr=False, compare=False)
    # The smallest sum of parts among the networks the calibration was fitted on, and the
    # calibration's ratio of prediction to sum of parts there.
    _calibration_floor: tuple = field(default=(0.0, 1.0), init=False, repr=False,
                                      compare=False)
    # The last :meth:`holdout` (stored in the file, or computed), for the counts it was on.
    stored_holdout: Holdout | None = field(default=None, repr=False, compare=False)

    # --- prediction ---------------------------------------------------------------

    def _call_share(self) -> float:
        """What each entry holds of the per-call cost: the whole call for a block timed
        alone, nothing for one timed in context."""
        if self.meta.method == "context" or CALL not in self.entries:
            return 0.0
        return self.ms(CALL)

    def ms(self, key: str) -> float:
        """The measured part ``key``'s figure, as the table predicts from it."""
        return self.entries[key].ms(self.meta.statistic)

    def model(self):
        """The fit to this table's measured blocks (:func:`mbnas.latency.fit.fit`), or
        None where it holds too few to fit; refitted when entries are added."""
        if self._fit[0] != len(self.entries):
            from mbnas.latency.fit import fit

            self._fit = (len(self.entries), fit(self._measured(), blocked=self.blocked))
        return self._fit[1]

    @property
    def blocked(self) -> bool:
        """Whether the runtime runs networks in a blocked memory layout (ONNX Runtime's
        NCHWc), whose fit has terms of its own (mbnas.latency.fit.HUGE_MAP)."""
        return self.meta.runtime == "onnxruntime"

    def _measured(self) -> dict[str, float]:
        """Each measured part's ms, less the per-call cost: what the fit is fitted to."""
        call = self._call_share()
        return {k: self.ms(k) - call for k in self.entries if k != CALL}

    def unmeasured(self, arch: Arch) -> list[str]:
        """The keys ``arch`` needs that the table has not measured."""
        need = [k for _, k in keys(arch)] + [CALL]
        return sorted({k for k in need if k not in self.entries})

    def missing(self, arch: Arch) -> list[str]:
        """The keys ``arch`` needs that the table can neither look up nor predict (none:
        it can be priced)."""
        model = self.model() if self.fill else None
        return [k for k in self.unmeasured(arch)
                if k == CALL or model is None or model.predict(k) is None]

    def calibration(self) -> Calibration:
        """How a network's end-to-end latency follows from its parts (see
        :class:`Calibration`), fitted by least squares on relative error to the networks the
        table timed end to end.  A part timed alone runs with its weights and input hot in
        cache, which a whole network does not give it, converts its input and output to
        the runtime's layout, which a network does once, and pays a call of its own; the
        sum of parts misses all three (nn-Meter).  The table fits both a scale and an
        offset alone and those with the edge terms, and keeps the one that predicts each
        of its networks better when fitted to the others (the median error); with fewer
        than :data:`CALIBRATION_NETWORKS` networks only the first, with fewer than 3
        none."""
        state = (len(self.entries), len(self.networks))
        if self._calibration[0] != state:
            self._calibration = (state, self._fit_calibration())
        return self._calibration[1]

    def _fit_calibration(self) -> Calibration:
        import numpy as np

        from mbnas.arch.encoding import decode

        self._calibration_floor = (0.0, 1.0)
        rows = []
        for text, entry in self.networks.items():
            try:
                parts = self._parts(decode(text))
            except MbnasError:
                continue
            rows.append((sum(p.ms for p in parts), *_edges(parts), 1.0,
                         entry.ms(self.meta.statistic)))
        if len(rows) < 3:
            return Calibration()
        a = np.array(rows)
        candidates = [c for c in _fit_each(a) if c is not None]
        if not candidates:
            return Calibration()
        if len(candidates) > 1:  # the one that predicts each network best, left out
            candidates.sort(key=lambda c: _left_out_error(a, c.columns))
        calibration = candidates[0].calibration
        smallest = a[np.argmin(a[:, 0])]
        # Below the smallest network it was fitted on, a prediction never falls below
        # that network's own ratio of prediction to sum of parts (see breakdown).
        at_smallest = calibration.apply(*smallest[:3]) + calibration.offset
        self._calibration_floor = (float(smallest[0]), at_smallest / float(smallest[0]))
        return calibration

    def retimed(self, networks: Mapping[str, Entry]) -> None:
        """Keep new end-to-end timings of networks (a recalibration): the calibration and
        the self-check are refitted to them."""
        self.networks.update(networks)
        self._calibration = (-1, None)
        self.stored_holdout = None

    def breakdown(self, arch: Arch) -> list[Part]:
        """Each part's ms, less the per-call cost, then the call, all calibrated
        (:meth:`calibration`): the call's row carries the offset."""
        c = self.calibration()
        rows = self._parts(arch)
        calibrated = [p._replace(ms=c.apply(p.ms, elements, weights))
                      for p, (elements, weights) in zip(rows, map(_edges_of, rows),
                                                        strict=True)]
        calibrated[-1] = calibrated[-1]._replace(ms=calibrated[-1].ms + c.offset)
        raw, total = sum(p.ms for p in rows), sum(p.ms for p in calibrated)
        smallest, ratio = self._calibration_floor
        if (0 < raw < smallest and total < ratio * raw) or total <= 0:
            # Below the smallest network it was fitted on, a negative offset (or edge
            # term) would extrapolate towards zero and below: scale in proportion to the
            # calibration's ratio at that network instead, so every prediction stays
            # positive.
            return [p._replace(ms=p.ms * ratio) for p in rows]
        return calibrated

    def _parts(self, arch: Arch) -> list[Part]:
        """:meth:`breakdown` before calibration."""
        self.check(arch)
        missing = self.missing(arch)
        if missing:
            where = f" {self.path}" if self.path else ""
            why = ("" if not self.fill or CALL in missing else
                   self._why_unpredicted(missing[0]))
            raise MbnasError(f"latency table{where} has no entry for {len(missing)} part(s) "
                             f"of this network, e.g. {missing[0]}{why}; measure them on the "
                             "device with `mbnas latency build ARCH --out TABLE` (it adds to "
                             "a table)")
        share = self._call_share()
        rows = []
        for layer, key in keys(arch):
            entry = self.entries.get(key)
            rows.append(Part(layer, key, self.ms(key) - share) if entry is not None else
                        Part(layer, key, self.model().predict(key), measured=False))
        return [*rows, Part("call", CALL, self.ms(CALL))]

    def _why_unpredicted(self, key: str) -> str:
        from mbnas.latency.fit import features, required_parts

        if self.model() is None:
            return (f" and holds too few measured blocks to predict them (at least "
                    f"{required_parts(self._measured(), blocked=self.blocked)})")
        if features(key) is None:
            return ", a part the fit does not know"
        return (f", whose {', '.join(self.model().lacking(key))} no measured block has, so "
                "the fit cannot predict it")

    def predict(self, arch: Arch) -> float:
        """Predicted end-to-end latency of ``arch`` in ms."""
        return sum(part.ms for part in self.breakdown(arch))

    def holdout(self) -> Holdout | None:
        """How close this table comes to networks it never saw (:class:`Holdout`), or None
        where it timed fewer than :data:`HOLDOUT_NETWORKS` networks end to end.  Computed
        once per state (a few seconds: one fit per network) and kept in the file by
        ``mbnas latency build``."""
        if not self._holdout_current():
            self.stored_holdout = self._compute_holdout()
        return self.stored_holdout

    def _holdout_current(self) -> bool:
        """Whether :attr:`stored_holdout` was computed on the table as it is now."""
        h = self.stored_holdout
        return h is not None and (h.entries, h.timed) == (len(self.entries),
                                                           len(self.networks))

    def _compute_holdout(self) -> Holdout | None:
        import statistics

        if len(self.networks) < HOLDOUT_NETWORKS:
            return None
        errors = self.held_out_errors()
        if not errors:
            return None
        size = [abs(e) for e in errors.values()]
        worst = max(errors, key=lambda t: abs(errors[t]))
        return Holdout(len(errors), statistics.median(size),
                       sum(e <= 0.10 for e in size) / len(size),
                       statistics.median(errors.values()), worst, errors[worst],
                       len(self.entries), len(self.networks))

    def held_out_errors(self) -> dict[str, float]:
        """Each network timed end to end (encoding) -> predicted / measured - 1, predicted
        without it in the calibration and without the blocks only it has (see
        :class:`Holdout`); a network the rest cannot price is left out."""
        from collections import Counter

        from mbnas.arch.encoding import decode

        needs = {}
        for text in self.networks:
            try:
                needs[text] = {k for _, k in keys(decode(text))}
            except MbnasError:  # a network this code no longer reads: not checked
                continue
        used = Counter(k for ks in needs.values() for k in ks)
        errors = {}
        for text, ks in needs.items():
            own = {k for k in ks if used[k] == 1}
            fold = Table(self.meta, {k: e for k, e in self.entries.items() if k not in own},
                         networks={t: e for t, e in self.networks.items() if t != text})
            try:
                predicted = fold.predict(decode(text))
            except MbnasError:  # its own blocks are beyond the others' fit
                continue
            errors[text] = predicted / self.networks[text].ms(self.meta.statistic) - 1
        return errors

    def check(self, arch: Arch) -> None:
        """Refuse an ``arch`` at another resolution than the table was measured at."""
        if arch.resolution != self.meta.resolution:
            raise MbnasError(f"latency table {self.path or ''} was measured at "
                             f"{self.meta.resolution}x{self.meta.resolution}, this network is "
                             f"priced at {arch.resolution}x{arch.resolution}; build a table "
                             "at that resolution (mbnas latency build --resolution)")

    def describe(self) -> str:
        m = self.meta
        how = "in context" if m.method == "context" else "alone"
        held = (f", held at the speed a reference network ran at"
                f"{f' ({m.canary_ms:.2f} ms)' if m.canary_ms else ''}" if m.canary else "")
        stat = "lower quartile" if m.statistic == "q1" else "median"
        return (f"{m.runtime} {m.runtime_version}, {m.threads} thread(s), batch {m.batch}, "
                f"{m.resolution} px, blocks timed {how}{held}, the {stat} of their rounds, "
                f"on {m.cpu}")

    # --- files ----------------------------------------------------------------------

    def to_json(self) -> dict:
        return {"format": FORMAT, "meta": asdict(self.meta),
                "entries": {k: asdict(e) for k, e in sorted(self.entries.items())},
                "networks": {k: asdict(e) for k, e in sorted(self.networks.items())},
                **({"holdout": self.stored_holdout.to_json()}
                   if self._holdout_current() else {})}

    def save(self, path: str | Path | None = None) -> Path:
        from mbnas.files import write_json

        path = Path(path or self.path)
        write_json(path, self.to_json())
        self.path = path
        return path


def load_table(path: str | Path) -> Table:
    """Read a table; a missing, damaged or foreign file is refused in one line."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MbnasError(f"latency table {path} does not exist; build one with "
                         "`mbnas latency build`") from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise MbnasError(f"latency table {path} cannot be read ({err}); rebuild it with "
                         "`mbnas latency build`") from None
    try:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not a format-{FORMAT} mbnas latency table")
        meta = Meta(**data["meta"])
        if meta.runtime not in RUNTIMES:
            raise ValueError(f"runtime {meta.runtime!r} is not one of {', '.join(RUNTIMES)}")
        if meta.statistic not in STATISTICS:
            raise ValueError(f"statistic {meta.statistic!r} is not one of "
                             f"{', '.join(STATISTICS)}")
        if meta.method not in METHODS:
            raise ValueError(f"method {meta.method!r} is not one of {', '.join(METHODS)}")
        if not isinstance(meta.canary, str) or not isinstance(meta.canary_ms, (int, float)) \
                or isinstance(meta.canary_ms, bool) or not math.isfinite(meta.canary_ms) \
                or meta.canary_ms < 0 or bool(meta.canary) != (meta.canary_ms > 0):
            raise ValueError("meta.canary and meta.canary_ms do not name a reference network "
                             "and its positive time")
        for name in ("threads", "batch", "resolution", "rounds", "repeats"):
            value = getattr(meta, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"meta.{name} {value!r} is not a positive integer")
        if isinstance(meta.min_seconds, bool) or not isinstance(meta.min_seconds, (int, float)) \
                or not math.isfinite(meta.min_seconds) or meta.min_seconds < 0:
            raise ValueError(f"meta.min_seconds {meta.min_seconds!r} is not a number of "
                             "seconds")
        entries, networks = {}, {}
        for into, items in ((entries, data["entries"]), (networks, data.get("networks", {}))):
            for key, raw in items.items():
                entry = Entry(**raw)
                values = (entry.median_ms, entry.q1_ms, entry.q3_ms)
                if not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                           and math.isfinite(v) and v >= 0 for v in values):
                    raise ValueError(f"entry {key!r} holds a time that is not a number of ms")
                into[key] = entry
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        what = f"missing {err}" if isinstance(err, KeyError) else str(err)
        raise MbnasError(f"latency table {path} is damaged: {what}; rebuild it with "
                         "`mbnas latency build`") from None
    table = Table(meta, entries, path, networks)
    if isinstance(data.get("holdout"), dict):
        table.stored_holdout = _holdout_from_json(data["holdout"])
    return table
