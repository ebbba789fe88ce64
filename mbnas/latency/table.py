"""A latency table: milliseconds per block, measured on the device it will predict for.

Keys are whole blocks as the runtime executes them (nn-Meter's finding: a runtime fuses
conv + batch norm + activation, and a block's SE and shortcut with it, so the sum of
single operators misses what fusion saves): every field of a resolved block
(:class:`mbnas.arch.kinds.Block`) but its name, plus the classifier (pool and fully
connected layers).  A network's predicted latency is the table's ``call`` entry (one run
of a trivial network: the per-call cost every block measured alone pays once more) plus
each block's entry less that per-call cost.

The file is JSON: ``meta`` (what it was measured on: runtime and its version, threads,
batch, resolution, CPU model, when) and ``entries`` (key -> median and quartiles over the
repeats, in ms).  Torch-free: a table is read and priced without building anything.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mbnas.arch.kinds import Block
from mbnas.arch.spec import Arch, Network, resolve
from mbnas.errors import MbnasError

FORMAT = 1
RUNTIMES = ("onnxruntime", "torch")
CALL = "call"  # the per-call entry
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
    """``fc:1280-0-1000:relu6``: pooled features, hidden fc (0: none), classes."""
    return f"fc:{net.features}-{net.hidden_fc}-{net.num_classes}:{net.fc_activation}"


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


@dataclass
class Table:
    meta: Meta
    entries: dict[str, Entry] = field(default_factory=dict)
    path: Path | None = None

    # --- prediction ---------------------------------------------------------------

    def missing(self, arch: Arch) -> list[str]:
        """The keys ``arch`` needs that the table lacks (none: it can be priced)."""
        need = [k for _, k in keys(arch)] + [CALL]
        return sorted({k for k in need if k not in self.entries})

    def breakdown(self, arch: Arch) -> list[tuple[str, str, float]]:
        """``(layer, key, ms)`` per part, each less the per-call cost; the call last."""
        self.check(arch)
        missing = self.missing(arch)
        if missing:
            where = f" {self.path}" if self.path else ""
            raise MbnasError(f"latency table{where} has no entry for {len(missing)} part(s) "
                             f"of this network, e.g. {missing[0]}; measure them on the device "
                             "with `mbnas latency build ARCH --out TABLE` (it adds to a table)")
        call = self.entries[CALL].median_ms
        rows = [(layer, key, self.entries[key].median_ms - call) for layer, key in keys(arch)]
        return [*rows, ("call", CALL, call)]

    def predict(self, arch: Arch) -> float:
        """Predicted end-to-end latency of ``arch`` in ms."""
        return sum(ms for *_, ms in self.breakdown(arch))

    def check(self, arch: Arch) -> None:
        """Refuse an ``arch`` at another resolution than the table was measured at."""
        if arch.resolution != self.meta.resolution:
            raise MbnasError(f"latency table {self.path or ''} was measured at "
                             f"{self.meta.resolution}x{self.meta.resolution}, this network is "
                             f"priced at {arch.resolution}x{arch.resolution}; build a table "
                             "at that resolution (mbnas latency build --resolution)")

    def describe(self) -> str:
        m = self.meta
        return (f"{m.runtime} {m.runtime_version}, {m.threads} thread(s), batch {m.batch}, "
                f"{m.resolution} px, on {m.cpu}")

    # --- files ----------------------------------------------------------------------

    def to_json(self) -> dict:
        return {"format": FORMAT, "meta": asdict(self.meta),
                "entries": {k: asdict(e) for k, e in sorted(self.entries.items())}}

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
        for name in ("threads", "batch", "resolution"):
            value = getattr(meta, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"meta.{name} {value!r} is not a positive integer")
        entries = {}
        for key, raw in data["entries"].items():
            entry = Entry(**raw)
            values = (entry.median_ms, entry.q1_ms, entry.q3_ms)
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                       and math.isfinite(v) and v >= 0 for v in values):
                raise ValueError(f"entry {key!r} holds a time that is not a number of ms")
            entries[key] = entry
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        what = f"missing {err}" if isinstance(err, KeyError) else str(err)
        raise MbnasError(f"latency table {path} is damaged: {what}; rebuild it with "
                         "`mbnas latency build`") from None
    return Table(meta, entries, path)
