"""Timing parts of networks on this machine, as a careful benchmark does: the thread
count fixed and recorded, the process pinned to that many CPUs, warm-up calls first,
then interleaved rounds of timed calls, the median of the rounds' medians kept with their
quartiles (the spread says how far the figure can be trusted).

Runtimes: ONNX Runtime on the CPU (each part exported to ONNX and run in a session with
``intra_op_num_threads`` fixed, its input bound once so that no call copies it) and
PyTorch eager (``torch.set_num_threads``, channels_last, inference mode).  Measure each
runtime in a fresh process: running one runtime moved the other's eager medians by up to
1.9x in one process on this project's machine (docs/latency.md).
"""

from __future__ import annotations

import ctypes
import io
import json
import math
import os
import platform
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import nn

from mbnas.arch.kinds import kind
from mbnas.arch.spec import Arch, resolve
from mbnas.errors import MbnasError
from mbnas.latency.table import (
    CALL,
    MIN_SECONDS,
    REPEATS,
    ROUNDS,
    RUNTIMES,
    STATISTICS,
    Entry,
    Meta,
    block_key,
    classifier_key,
)


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what the platform says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def runtime_version(runtime: str) -> str:
    if runtime == "torch":
        return torch.__version__
    if runtime == "cuda":
        return f"{torch.__version__} (CUDA {torch.version.cuda})"
    return _ort().__version__


def _cuda() -> None:
    """Refuse ``--runtime cuda`` in one line where no CUDA device is visible."""
    if not torch.cuda.is_available():
        raise MbnasError("--runtime cuda: this machine has no CUDA device PyTorch can use "
                         "(torch.cuda.is_available() is False); build the table on the GPU "
                         "you deploy on, or choose --runtime onnxruntime or torch")


def device_model(runtime: str) -> str:
    """What a table is measured on: the GPU's name for ``cuda``, else the CPU model."""
    if runtime == "cuda":
        return f"{torch.cuda.get_device_name()} (host {cpu_model()})"
    return cpu_model()


def _ort():
    try:
        import onnxruntime
    except ImportError:
        raise MbnasError("--runtime onnxruntime needs the onnxruntime package: pip install "
                         "'mbnas[export]' (or onnxruntime)") from None
    return onnxruntime


class _Classifier(nn.Module):
    """Pool, MobileNetV3's hidden fc where there is one, and the classifier."""

    def __init__(self, features: int, hidden: int, activation: str, classes: int) -> None:
        super().__init__()
        from mbnas.nn.layers import ACTIVATIONS

        self.pool = nn.AdaptiveAvgPool2d(1)
        self.hidden = (nn.Sequential(nn.Linear(features, hidden),
                                     ACTIVATIONS[activation](inplace=True))
                       if hidden else nn.Identity())
        self.fc = nn.Linear(hidden or features, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.hidden(self.pool(x).flatten(1)))


class _Call(nn.Module):
    """What a call of any network pays besides its layers: one trivial op."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1


@dataclass(frozen=True)
class Part:
    key: str
    module: nn.Module
    shape: tuple[int, ...]  # its input, batch first


def parts(arch: Arch, batch: int) -> list[Part]:
    """Every part of ``arch`` a table times, as a module with its input shape; then the
    per-call entry."""
    net = resolve(arch)
    out = [Part(block_key(b), kind(b.kind).module(b).eval(),
                (batch, b.in_channels, b.in_size, b.in_size)) for b in net.blocks]
    last = net.blocks[-1]
    out.append(Part(classifier_key(net),
                    _Classifier(net.features, net.hidden_fc, net.fc_activation,
                                net.num_classes).eval(),
                    (batch, net.features, last.out_size, last.out_size)))
    out.append(Part(CALL, _Call().eval(), (batch, 8, 1, 1)))
    return out


@contextmanager
def pinned(threads: int):
    """Run the block pinned to ``threads`` CPUs (the first this process may use), then
    restore the process's CPUs.  On this project's 2-core machine an unpinned ONNX Runtime
    thread wandered between a quiet and a busy core: its medians of 20 calls ranged over
    40% from one moment to the next, and pinned to the first core over 4% (with a rare
    spell of 2x that the median of rounds discards)."""
    if not hasattr(os, "sched_setaffinity"):  # not Linux: nothing to pin with
        yield
        return
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, sorted(allowed)[:max(1, threads)])
    try:
        yield
    finally:
        os.sched_setaffinity(0, allowed)


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def steady_allocator() -> bool:
    """Fix glibc malloc's thresholds in this process, as a long-running inference process
    settles into: buffers up to 32 MiB come from the heap, which is not handed back to the
    system.  Left dynamic (glibc's default), a freed large buffer raises the size below
    which later buffers come from the heap, and a large free heap top is trimmed: whether
    an eager call page-faults fresh memory in then depends on what the process ran before
    (bench/latency_stability.py).  False where this is not glibc."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20) and mallopt(_M_TRIM_THRESHOLD, 1 << 30))


def _times(call: Callable[[], object], *, warmup: int, repeats: int,
           min_seconds: float = 0.0) -> list[float]:
    for _ in range(warmup):
        call()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def _entry(values: list[float], runs: int) -> Entry:
    if len(values) == 1:
        return Entry(round(values[0], 5), round(values[0], 5), round(values[0], 5), runs)
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return Entry(median_ms=round(median, 5), q1_ms=round(q1, 5), q3_ms=round(q3, 5),
                 runs=runs)


# Parts timed between two readings of the canary, and the canary's calls per reading.
CANARY_EVERY, CANARY_REPEATS = 8, 10


class Canary:
    """A reference network timed between the parts, so that the machine's speed of the
    moment is measured beside them: each part's round median is scaled by
    ``reference_ms`` over the canary's median read just before and just after it, and a
    table holds every entry at one speed (the reference: the canary's median over the
    table's first build, kept in its meta).  On a dedicated device the ratio stays near 1;
    on a shared one, whose speed moved 1.77x within a minute (bench/machine_noise.py), a
    slow spell no longer reads as a slow block.  ``raw`` keeps the last entries as timed,
    before scaling, and ``readings`` every reading."""

    def __init__(self, call: Callable[[], object], reference_ms: float | None = None, *,
                 repeats: int = CANARY_REPEATS) -> None:
        self.call, self.reference_ms, self.repeats = call, reference_ms, repeats
        self.readings: list[float] = []
        self.raw: dict[str, Entry] = {}

    def read(self) -> float:
        value = statistics.median(_times(self.call, warmup=1, repeats=self.repeats))
        self.readings.append(value)
        return value

    def settle(self) -> float:
        """The reference: as given, else the median of every reading so far."""
        if self.reference_ms is None:
            self.reference_ms = round(statistics.median(self.readings), 5)
        return self.reference_ms


@dataclass
class Rounds:
    """The rounds of one :func:`timed_rounds` done so far: each call's round medians, the
    canary's speed around each (1.0 without one), its timed calls, and the canary's
    readings; what a killed build resumes from (:data:`Rounds.FORMAT` on disk)."""

    medians: dict[str, list[float]]
    speeds: dict[str, list[float]]
    runs: dict[str, int]
    readings: list[float] = field(default_factory=list)

    FORMAT = 1

    @classmethod
    def start(cls, keys) -> Rounds:
        keys = list(keys)
        return cls({k: [] for k in keys}, {k: [] for k in keys}, dict.fromkeys(keys, 0))

    @property
    def done(self) -> int:
        return min((len(v) for v in self.medians.values()), default=0)

    def to_json(self) -> dict:
        return {"medians": self.medians, "speeds": self.speeds, "runs": self.runs,
                "readings": self.readings}

    @classmethod
    def from_json(cls, raw, keys) -> Rounds | None:
        """The rounds stored as ``raw`` for the calls ``keys``, or None where they are of
        other calls or do not read as rounds (the chunk is timed afresh)."""
        try:
            r = cls(raw["medians"], raw["speeds"], raw["runs"], raw["readings"])
            keys = set(keys)
            numbers = [*r.readings, *(v for d in (r.medians, r.speeds) for vs in d.values()
                                      for v in vs)]
            ok = (set(r.medians) == set(r.speeds) == set(r.runs) == keys
                  and len({len(v) for v in (*r.medians.values(), *r.speeds.values())}) <= 1
                  and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                          and math.isfinite(v) and v > 0 for v in numbers)
                  and all(isinstance(n, int) and n >= 0 for n in r.runs.values()))
        except (KeyError, TypeError, AttributeError):
            return None
        return r if ok else None


def timed_rounds(calls: dict[str, Callable[[], object]], *, rounds: int, warmup: int,
                 repeats: int, min_seconds: float = 0.0, canary: Canary | None = None,
                 progress: Callable[[int], None] | None = None,
                 resume: Rounds | None = None,
                 checkpoint: Callable[[Rounds], None] | None = None) -> dict[str, Entry]:
    """Each call timed in ``rounds`` interleaved rounds (every call once per round, in
    turn): its entry is the median and quartiles of its rounds' medians (the spread
    between moments, which is what makes a figure untrustworthy on a shared machine).
    Warm-up calls precede the first round only; later rounds take two.  With a
    ``canary``, it is read before each round and after every :data:`CANARY_EVERY` calls,
    and each round's median is held at the canary's reference speed.  ``checkpoint`` is
    given the rounds done after each round; ``resume``: such rounds of these calls, which
    the timing goes on from (its first round warmed up as a first round is)."""
    state = resume if resume is not None else Rounds.start(calls)
    medians, speeds, runs = state.medians, state.speeds, state.runs
    if canary is not None and resume is not None:
        canary.readings[:0] = resume.readings  # what its reference is the median of
    items = list(calls.items())
    step = CANARY_EVERY if canary else max(1, len(items))
    first = state.done
    for r in range(first, rounds):
        before = canary.read() if canary else 1.0
        for start in range(0, len(items), step):
            group = items[start:start + step]
            for key, call in group:
                times = _times(call, warmup=warmup if r == first else 2, repeats=repeats,
                               min_seconds=min_seconds)
                medians[key].append(statistics.median(times))
                runs[key] += len(times)
            after = canary.read() if canary else 1.0
            for key, _ in group:
                speeds[key].append((before + after) / 2)
            before = after
        if checkpoint is not None:
            if canary is not None:
                state.readings = list(canary.readings)
            checkpoint(state)
        if progress is not None:
            progress(r + 1)  # rounds done
    if canary is None:
        return {key: _entry(values, runs[key]) for key, values in medians.items()}
    reference = canary.settle()
    canary.raw = {key: _entry(values, runs[key]) for key, values in medians.items()}
    return {key: _entry([m * reference / c for m, c in zip(values, speeds[key], strict=True)],
                        runs[key]) for key, values in medians.items()}


def _center(values: list[float]) -> float:
    """The mean of the middle half (a profiler's whole microseconds make a plain median
    jump by a microsecond; the middle half's mean does not, and no outlier moves it)."""
    values = sorted(values)
    cut = len(values) // 4
    middle = values[cut:len(values) - cut] or values
    return statistics.fmean(middle)


class _InContext(NamedTuple):
    """One network, run whole (``run``), each run split into its parts' shares in ms
    (``shares``): every block (in order), the classifier, then the call (what the run cost
    besides them)."""

    run: Callable[[], object]
    shares: Callable[[], list[list[float]]]


def context_rounds(nets: dict[str, _InContext], *, rounds: int, warmup: int, repeats: int,
                   min_seconds: float = 0.0,
                   canary: Canary | None = None) -> dict[str, list[Entry]]:
    """Each network run in ``rounds`` interleaved rounds (as :func:`timed_rounds`); each
    part's entry is the median and quartiles of its rounds' centres (:func:`_center`).
    Returns, per network, one entry per part in the order the shares give them.  With a
    ``canary``, it is read before each round and after each network, and each round's
    centres are held at the canary's reference speed."""
    timed: dict[str, list[int]] = {key: [] for key in nets}  # round of each run, -1 warm-up
    speeds: dict[str, list[float]] = {key: [] for key in nets}
    for r in range(rounds):
        before = canary.read() if canary else 1.0
        for key, net in nets.items():
            for _ in range(warmup if r == 0 else 2):
                net.run()
                timed[key].append(-1)
            start, n = time.perf_counter(), 0
            while n < repeats or time.perf_counter() - start < min_seconds:
                net.run()
                timed[key].append(r)
                n += 1
            after = canary.read() if canary else 1.0
            speeds[key].append((before + after) / 2)
            before = after
    reference = canary.settle() if canary else 1.0
    out = {}
    for key, net in nets.items():
        shares = net.shares()
        if len(shares) != len(timed[key]):
            raise MbnasError(f"timing {key} in context: {len(timed[key])} runs, but "
                             f"{len(shares)} were recorded")
        per_round = [[row for row, r in zip(shares, timed[key], strict=True) if r == i]
                     for i in range(rounds)]
        scale = [reference / c for c in speeds[key]]
        out[key] = [_entry([_center([row[p] for row in rows]) * scale[i]
                            for i, rows in enumerate(per_round)],
                           sum(len(rows) for rows in per_round))
                    for p in range(len(shares[0]))]
    return out


# A node of an exported network is named by the module it came from: /features/features.3/
# ... for the fourth block, /pool, /hidden, /classifier (and the flatten) for the classifier.
_BLOCK_NODE = re.compile(r"^/features/features\.(\d+)/")
_CLASSIFIER_NODE = ("/pool", "/Flatten", "/hidden", "/dropout", "/classifier")


def ort_shares(events: list[dict], blocks: int) -> list[list[float]]:
    """Each profiled run (ONNX Runtime's ``model_run``) split into its parts' ms: a part
    runs from its first node's start to the next part's first node's start (what the
    runtime does between them, a layout conversion, say, is the part's), the classifier to
    its last node's end, and the call is the rest of the run."""
    runs = sorted((e["ts"], e["dur"]) for e in events
                   if e.get("cat") == "Session" and e.get("name") == "model_run")
    nodes = sorted((e["ts"], e["dur"], e["name"]) for e in events
                   if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"))
    out, i = [], 0
    for ts, dur in runs:
        first: dict[int, int] = {}
        end = ts
        while i < len(nodes) and nodes[i][0] <= ts + dur:
            node_ts, node_dur, name = nodes[i]
            i += 1
            if node_ts < ts:
                continue
            match = _BLOCK_NODE.match(name)
            part = (int(match.group(1)) if match else
                    blocks if name.startswith(_CLASSIFIER_NODE) else None)
            if part is not None:
                first.setdefault(part, node_ts)
            end = max(end, node_ts + node_dur)
        if sorted(first) != list(range(blocks + 1)):
            raise MbnasError("ONNX Runtime's profile of a run does not name every block of "
                             f"the network (found parts {sorted(first)} of {blocks + 1})")
        starts = [first[p] for p in range(blocks + 1)] + [end]
        parts = [(b - a) / 1000 for a, b in zip(starts, starts[1:], strict=False)]
        out.append([*parts, dur / 1000 - sum(parts)])
    return out


class Timer:
    """Times modules in one runtime at a fixed thread count, by one protocol (``rounds``
    interleaved rounds of at least ``repeats`` calls and ``min_seconds`` each)."""

    def __init__(self, runtime: str, threads: int, *, warmup: int = 10,
                 repeats: int = REPEATS, min_seconds: float = MIN_SECONDS,
                 rounds: int = ROUNDS, steady: bool = True, canary: Arch | None = None,
                 canary_ms: float | None = None) -> None:
        """``canary``: a reference network timed beside everything this timer times, whose
        speed every figure is held at (:class:`Canary`; ``canary_ms``: its reference, else
        its median over this timer's first timing)."""
        if runtime not in RUNTIMES:
            raise MbnasError(f"--runtime: {runtime!r} is not allowed; choose one of "
                             f"{', '.join(RUNTIMES)}")
        self.runtime, self.threads = runtime, threads
        self.warmup, self.repeats, self.min_seconds = warmup, repeats, min_seconds
        self.rounds = rounds
        self.canary_arch, self.canary_reference = canary, canary_ms
        self._canary: Canary | None = None
        if runtime in ("torch", "cuda"):
            if runtime == "cuda":
                _cuda()
            torch.set_num_threads(threads)
            if steady:
                steady_allocator()
        else:
            _ort()

    def meta(self, *, batch: int, resolution: int, method: str = "isolated") -> Meta:
        from mbnas import __version__
        from mbnas.arch.encoding import encode

        return Meta(runtime=self.runtime, runtime_version=runtime_version(self.runtime),
                    threads=self.threads, batch=batch, resolution=resolution,
                    cpu=device_model(self.runtime),
                    created=time.strftime("%Y-%m-%d %H:%M:%S"),
                    mbnas=__version__, method=method,
                    canary=encode(self.canary_arch) if self.canary_arch else "",
                    canary_ms=self.canary_ms or 0.0, statistic=STATISTICS[0],
                    rounds=self.rounds, repeats=self.repeats, min_seconds=self.min_seconds)

    @classmethod
    def like(cls, meta: Meta, **kwargs) -> Timer:
        """A timer that times as the table ``meta`` describes was timed (runtime, threads
        and protocol), so that what it measures compares with the table's figures."""
        return cls(meta.runtime, meta.threads, repeats=meta.repeats,
                   min_seconds=meta.min_seconds, rounds=meta.rounds, **kwargs)

    @property
    def canary_ms(self) -> float | None:
        """The canary's reference median (None before it is first timed, or without one)."""
        return self._canary.reference_ms if self._canary else self.canary_reference

    def canary(self, batch: int) -> Canary | None:
        """The canary, ready to read (built and prepared on first use)."""
        if self.canary_arch is None:
            return None
        if self._canary is None:
            from mbnas.nn.network import build

            a = self.canary_arch
            self._canary = Canary(self.prepare(build(a), (batch, 3, a.resolution,
                                                          a.resolution)), self.canary_reference)
        return self._canary

    def prepare(self, module: nn.Module, shape: tuple[int, ...]) -> Callable[[], object]:
        """One call of ``module`` on an input of ``shape`` in this runtime, ready to time
        (exported and loaded once)."""
        module = module.eval()
        x = torch.randn(*shape)
        if self.runtime == "cuda":  # as the proxy trainings run there: NCHW, fp32
            module, x = module.to("cuda"), x.to("cuda")

            def call():
                with torch.inference_mode():
                    module(x)
                torch.cuda.synchronize()  # the kernels are launched, not yet run, without it
            return call
        if self.runtime == "torch":
            if x.dim() == 4:
                module = module.to(memory_format=torch.channels_last)
                x = x.contiguous(memory_format=torch.channels_last)

            def call():
                with torch.inference_mode():
                    module(x)
            return call
        return self._session_call(module, x)

    def time_all(self, items: dict[str, tuple[nn.Module, tuple[int, ...]]], *,
                 rounds: int | None = None,
                 progress: Callable[[int], None] | None = None,
                 resume: Rounds | None = None,
                 checkpoint: Callable[[Rounds], None] | None = None) -> dict[str, Entry]:
        """Every ``key: (module, input shape)`` in ``rounds`` interleaved rounds (by
        default the timer's); ``progress`` is told each round done; ``resume`` and
        ``checkpoint``: see :func:`timed_rounds`."""
        calls = {key: self.prepare(module, shape) for key, (module, shape) in items.items()}
        batch = next(iter(items.values()))[1][0] if items else 1
        canary = self.canary(batch)
        with pinned(self.threads):
            return timed_rounds(calls, rounds=rounds or self.rounds, warmup=self.warmup,
                                repeats=self.repeats, min_seconds=self.min_seconds,
                                canary=canary, progress=progress, resume=resume,
                                checkpoint=checkpoint)

    def time_network(self, arch: Arch, batch: int, *, rounds: int | None = None) -> Entry:
        """End to end: the whole network, as a deployment runs it."""
        return self.time_networks({"net": arch}, batch, rounds=rounds)["net"]

    def time_networks(self, archs: dict[str, Arch], batch: int, *,
                      rounds: int | None = None,
                      progress: Callable[[int], None] | None = None,
                      resume: Rounds | None = None,
                      checkpoint: Callable[[Rounds], None] | None = None
                      ) -> dict[str, Entry]:
        """Whole networks end to end, in interleaved rounds (the rest: :meth:`time_all`)."""
        from mbnas.nn.network import build

        return self.time_all({key: (build(arch), (batch, 3, arch.resolution,
                                                  arch.resolution))
                              for key, arch in archs.items()}, rounds=rounds,
                             progress=progress, resume=resume, checkpoint=checkpoint)

    def time_in_context(self, archs: dict[str, Arch], batch: int, *,
                        rounds: int | None = None) -> dict[str, dict[str, Entry]]:
        """Whole networks in interleaved rounds, each run split into its parts' shares:
        per network, an entry per table key (a key that occurs twice, as a stage's
        repeated blocks do, is their mean) and the call."""
        from mbnas.latency.table import keys

        with tempfile.TemporaryDirectory(prefix="mbnas-profile-") as tmp:
            nets = {key: self._in_context(arch, batch, tmp) for key, arch in archs.items()}
            canary = self.canary(batch)
            with pinned(self.threads):
                measured = context_rounds(nets, rounds=rounds or self.rounds,
                                          warmup=self.warmup,
                                          repeats=self.repeats, min_seconds=self.min_seconds,
                                          canary=canary)
        out = {}
        for label, arch in archs.items():
            entries = measured[label]
            by_key: dict[str, list[Entry]] = {}
            for (_, key), entry in zip(keys(arch), entries, strict=False):
                by_key.setdefault(key, []).append(entry)
            out[label] = {key: _mean_entry(group) for key, group in by_key.items()}
            out[label][CALL] = entries[-1]
        return out

    def _in_context(self, arch: Arch, batch: int, tmp: str) -> _InContext:
        from mbnas.nn.network import build

        net = build(arch).eval()
        blocks = len(net.features)
        x = torch.randn(batch, 3, arch.resolution, arch.resolution)
        if self.runtime == "torch":
            net = net.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
            stamps: list[float] = []
            rows: list[list[float]] = []
            for module in (*net.features, net.pool):
                module.register_forward_pre_hook(lambda *_: stamps.append(time.perf_counter()))

            def run():
                stamps.clear()
                start = time.perf_counter()
                with torch.inference_mode():
                    net(x)
                end = time.perf_counter()
                marks = [*stamps, end]
                parts = [(b - a) * 1000 for a, b in zip(marks, marks[1:], strict=False)]
                rows.append([*parts, (end - start) * 1000 - sum(parts)])
            return _InContext(run, lambda: rows)
        session, binding = self._session(net, x, profile=tmp)
        shares: list[list[float]] = []

        def collect():
            if not shares:
                with open(session.end_profiling(), encoding="utf-8") as f:
                    shares.extend(ort_shares(json.load(f), blocks))
            return shares
        return _InContext(lambda: session.run_with_iobinding(binding), collect)

    def _session_call(self, module: nn.Module, x: torch.Tensor) -> Callable[[], object]:
        session, binding = self._session(module, x)
        return lambda: session.run_with_iobinding(binding)

    def _session(self, module: nn.Module, x: torch.Tensor, profile: str | None = None):
        ort = _ort()
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if profile:
            options.enable_profiling = True
            options.profile_file_prefix = os.path.join(profile, "ort")
        session = ort.InferenceSession(_onnx_bytes(module, x), options,
                                       providers=["CPUExecutionProvider"])
        binding = session.io_binding()
        binding.bind_ortvalue_input(session.get_inputs()[0].name,
                                    ort.OrtValue.ortvalue_from_numpy(x.numpy()))
        binding.bind_output(session.get_outputs()[0].name, "cpu")
        return session, binding


def _mean_entry(entries: list[Entry]) -> Entry:
    if len(entries) == 1:
        return entries[0]
    return Entry(*(round(statistics.fmean(getattr(e, f) for e in entries), 5)
                   for f in ("median_ms", "q1_ms", "q3_ms")),
                 runs=sum(e.runs for e in entries))


def _onnx_bytes(module: nn.Module, x: torch.Tensor) -> bytes:
    """``module`` as an ONNX model for input ``x`` (fixed shapes: a table times one)."""
    from mbnas.export.write import ONNX_OPSET, _quiet_exporters

    buffer = io.BytesIO()
    with _quiet_exporters(), torch.no_grad():
        torch.onnx.export(module, (x,), buffer, input_names=["input"], output_names=["out"],
                          opset_version=ONNX_OPSET, dynamo=False)
    return buffer.getvalue()
