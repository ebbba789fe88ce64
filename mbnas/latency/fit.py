"""Predicting a part the table lacks from the parts it holds.

A search space's width and channel choices give far more distinct blocks than a device can
time (tens of thousands per stage of the default space), so a table holds the blocks of a
sample of networks and predicts the others from them, as nn-Meter predicts unseen kernels
from measured ones.  The model is the roofline's, one term per way a block spends time on a
CPU: multiply-adds by kind of convolution (pointwise, depthwise by kernel size, full),
feature-map elements read and written by kind of convolution, apart for the large maps of
the first stages (input :data:`LARGE_MAP` px or more, where a layer's tensors outgrow the
cache), activation elements by kind of activation, squeeze-and-excitation's pooling and
rescaling, the shortcut's add, the weights read, a fixed cost per operator and one per
block of each kind.  Its coefficients are fitted to the table's own entries by
non-negative least squares on relative error (a 0.1 ms block counts as much as a 3 ms
one), so they stay physical: no term can buy accuracy on one block by going negative.
A term no measured block had is stood in for by its kin (:func:`kin`), else the block is
refused.

Measured entries are always used as measured; the fit only fills gaps.  Torch-free (numpy
comes with pandas, a core dependency).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from mbnas.arch.kinds import Block, kind

# The terms every model has (a term no measured part has gets no weight).  A block's
# ``ops_KIND`` term, one per block kind met, is added to them.  ``weights``: a block of
# the last stages at 7 px reads megabytes of weights for little arithmetic (1024-6144-1024
# at 7 px: 12.6M weights, 14.5 ms in eager, predicted 10.7 ms without the term); chosen by
# leaving each build network's blocks out (docs/measurements.md#latency): over six eager
# tables the networks' median error fell from 7.8% to 6.8% on average (within +-10%: 62%
# to 73%), over six ONNX Runtime tables from 6.0% to 5.8%.
FEATURES = ("ops", "macs_pointwise", "macs_full", "macs_dw3", "macs_dw5", "macs_dw7",
            "elements_pointwise", "elements_pointwise_large", "elements_depthwise",
            "elements_depthwise_large", "elements_full", "elements_full_large",
            "elements_pointwise_huge", "elements_depthwise_huge", "elements_full_huge",
            "act_relu",
            "act_hswish", "se_elements", "se_macs", "shortcut_elements", "fc_macs",
            "pooled_elements", "ops_classifier", "macs_unaligned", "elements_unaligned",
            "input_pointwise", "input_depthwise", "input_full", "input_pointwise_huge",
            "input_depthwise_huge", "input_full_huge", "weights")
_CHEAP_ACTIVATIONS = ("relu", "relu6")
# A convolution whose input is at least this many pixels a side reads and writes maps
# that outgrow the cache (56 px: 56 x 56 x 144 floats is 1.8 MB); its elements are a term
# of their own.  Chosen on the project's first tables by leaving each build network's own
# blocks out and predicting it (docs/measurements.md#latency): 28 and byte thresholds
# did no better.
LARGE_MAP = 56
# A pointwise or depthwise convolution whose input channels are not a multiple of this
# runs outside ONNX Runtime's blocked (NCHWc) kernels: 1.7-1.8x the time per multiply-add
# of its aligned neighbours, on maps of 14 and 56 px alike (bench/latency_alignment.py;
# eager PyTorch: 1.0-1.1x).  MobileNetV1 truncates its scaled channels, so most of its
# widths have them (x0.718: 45, 91, 183, 367, 735 channels).  Its multiply-adds and
# elements are terms of their own, over and above the aligned terms; a table that
# measured no such convolution prices one as aligned (see OPTIONAL).
ALIGNMENT = 4
# Terms a model may lack without refusing a part that has them: a block kind none of
# which was measured (its operators are priced by "ops"), and the unaligned extra.
OPTIONAL = ("ops_", "macs_unaligned", "elements_unaligned", "input_")
# For a runtime that runs a network in a blocked memory layout (ONNX Runtime's NCHWc), a
# block timed alone converts its input into it, and what that costs depends on the
# convolution that reads it: a depthwise one first (a depthwise-separable block, or an
# inverted residual of expansion 1) was under-predicted by 10-42% at 56-112 px without
# it.  Such a model (``blocked``) has the block's input elements by the kind of its first
# convolution as terms of their own (``input_KIND``, apart at HUGE_MAP px), and the
# feature-map elements of maps of HUGE_MAP px and more apart from the large ones.  Chosen
# by leaving each build network's blocks out (docs/measurements.md#latency): over five
# ONNX Runtime tables the median error fell on every one, 8.0% to 6.9% on average; in
# eager it did not help, so an eager table's model does without.
HUGE_MAP = 112
# A runtime that runs convolutions in a blocked layout (ONNX Runtime's NCHWc) pads their
# channels to its block, the vector width: 16 floats on an AVX-512 CPU, 8 on AVX2.  Its
# time follows the padded counts: on this machine's tables a block of 8 or 24 channels was
# under-predicted by 15% on average and up to 75% (8 channels cost what 16 do), those of a
# multiple of 16 were not.  The block is read off the table (:func:`fit`): the model is
# fitted with each of these and keeps the padding that cuts its median error on the
# table's own blocks by at least PADDING_GAIN (16 on every ONNX Runtime table here, 8.3%
# to 5.6-6.7%; none on eager's, where no padding helped).  A convolution outside the
# blocked kernels (input channels off ALIGNMENT) is not padded.
CHANNEL_BLOCKS = (1, 8, 16)
PADDING_GAIN = 0.10


def parse_block_key(key: str) -> Block | None:
    """The block a table key names (see :func:`mbnas.latency.table.block_key`), or None
    for the classifier, the call, or a key of another format."""
    try:
        kind_name, channels, k, s, activation, shortcut, se, size = key.split(":")
        cin, hidden, cout = (int(c) for c in channels.split("-"))
        if not (k[0] == "k" and s[0] == "s" and se[:2] == "se"):
            return None
        return Block("b", kind_name, cin, hidden, cout, int(k[1:]), int(s[1:]), activation,
                     shortcut == "res", int(se[2:]), int(size))
    except ValueError:
        return None


def parse_classifier_key(key: str) -> tuple[int, int, int, int] | None:
    """``(features, hidden fc, classes, pooled size)`` of a classifier key, else None."""
    parts = key.split(":")
    if len(parts) != 4 or parts[0] != "fc":
        return None
    try:
        features, hidden, classes = (int(c) for c in parts[1].split("-"))
        return features, hidden, classes, int(parts[3])
    except ValueError:
        return None


def _padded(conv, block: int):
    """``conv`` with its channels padded up to a multiple of ``block`` as a blocked kernel
    runs it (see CHANNEL_BLOCKS); as it is where ``block`` is 1, for squeeze-and-
    excitation's convs on the pooled vector, and for one off the blocked kernels (input
    channels off ALIGNMENT; the stem's few input channels are read unpadded)."""
    if block <= 1 or not conv.norm or (
            conv.in_channels >= ALIGNMENT and conv.in_channels % ALIGNMENT):
        return conv
    def up(c):
        return -(-c // block) * block
    cin = conv.in_channels if conv.in_channels < ALIGNMENT else up(conv.in_channels)
    groups = cin if conv.groups > 1 else 1  # depthwise stays depthwise
    return conv._replace(in_channels=cin, out_channels=up(conv.out_channels), groups=groups)


def features(key: str, blocked: bool = False, channel_block: int = 1) -> dict[str, float] | None:
    """The model's features of the part ``key`` names (name -> amount, the absent ones
    0); None where it is not a block or a classifier this model knows.  ``blocked``: the
    terms of a runtime with a blocked layout (see HUGE_MAP); ``channel_block``: the channel block
    its convolutions are padded to (see CHANNEL_BLOCKS)."""
    row: dict[str, float] = dict.fromkeys(FEATURES, 0.0)
    block = parse_block_key(key)
    if block is not None:
        try:
            convs = kind(block.kind).convs(block)
        except Exception:  # noqa: BLE001 - a kind this install does not have
            return None
        cheap = block.activation in _CHEAP_ACTIVATIONS
        first = blocked
        for conv in (_padded(c, channel_block) for c in convs):
            out = conv.out_channels * conv.out_size ** 2
            macs = conv.weights * conv.out_size ** 2
            if not conv.norm:  # squeeze-and-excitation's 1x1 convs on the pooled vector
                row["se_macs"] += macs
                continue
            row["ops"] += 1
            row["weights"] += conv.weights  # read once a call: from memory, if large
            if conv.groups > 1:
                shape = "depthwise"
                row[f"macs_dw{min(7, max(3, conv.kernel))}"] += macs
            elif conv.kernel == 1:
                shape = "pointwise"
                row["macs_pointwise"] += macs
            else:
                shape = "full"
                row["macs_full"] += macs
            huge = blocked and conv.in_size >= HUGE_MAP
            if first:  # the convolution that reads the block's input
                row[f"input_{shape}{'_huge' if huge else ''}"] += (
                    conv.in_channels * conv.in_size ** 2)
                first = False
            large = "_huge" if huge else "_large" if conv.in_size >= LARGE_MAP else ""
            elements = conv.in_channels * conv.in_size ** 2 + out
            row[f"elements_{shape}{large}"] += elements
            if shape != "full" and conv.in_channels % ALIGNMENT:
                row["macs_unaligned"] += macs
                row["elements_unaligned"] += elements
            row["act_relu" if cheap else "act_hswish"] += out
        row[f"ops_{block.kind}"] = row.get(f"ops_{block.kind}", 0.0) + 1
        if block.se_channels:
            row["ops"] += 4  # pool, two convs, the gate and the rescale
            row["se_elements"] += block.hidden_channels * block.out_size ** 2
        if block.residual:
            row["ops"] += 1
            row["shortcut_elements"] += block.out_channels * block.out_size ** 2
        return row
    fc = parse_classifier_key(key)
    if fc is not None:
        feats, hidden, classes, size = fc
        row["ops"] += 2 + bool(hidden)
        row["ops_classifier"] = 1
        row["pooled_elements"] = feats * size ** 2
        row["fc_macs"] = feats * hidden + (hidden or feats) * classes
        return row
    return None


@functools.lru_cache(maxsize=65536)  # a pure function of the key, on every prediction
def edges(key: str) -> tuple[float, float]:
    """``(input elements, weights)`` of the part ``key`` names: what it carries across its
    edges that a part timed alone pays otherwise than inside a whole network (its input
    converted to the runtime's layout and back; its weights, hot in cache when one part
    runs over and over, cold when a network runs).  :meth:`Table.calibration` weighs them;
    ``(0, 0)`` for the call and for a key this model does not know."""
    block = parse_block_key(key)
    if block is not None:
        try:
            weights = sum(c.weights for c in kind(block.kind).convs(block))
        except Exception:  # noqa: BLE001 - a kind this install does not have
            return 0.0, 0.0
        return float(block.in_channels * block.in_size ** 2), float(weights)
    fc = parse_classifier_key(key)
    if fc is not None:
        feats, hidden, classes, size = fc
        return float(feats * size ** 2), float(feats * hidden + (hidden or feats) * classes)
    return 0.0, 0.0


def nnls(a: np.ndarray, b: np.ndarray, *, iterations: int = 500) -> np.ndarray:
    """Non-negative least squares, ``min |a x - b|`` with ``x >= 0`` (Lawson and Hanson's
    active-set method, as scipy's ``nnls``; scipy is not a dependency)."""
    n = a.shape[1]
    x = np.zeros(n)
    passive = np.zeros(n, dtype=bool)
    for _ in range(iterations):
        gradient = a.T @ (b - a @ x)
        free = ~passive & (gradient > 1e-12 * max(1.0, np.abs(gradient).max()))
        if not free.any():
            break
        passive[np.argmax(np.where(free, gradient, -np.inf))] = True
        while True:
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(a[:, passive], b, rcond=None)[0]
            if (z[passive] > 0).all():
                x = z
                break
            blocked = passive & (z <= 0)
            alpha = np.min(x[blocked] / (x[blocked] - z[blocked]))
            x = x + alpha * (z - x)
            passive &= x > 1e-15
            x[~passive] = 0.0
    return x


@dataclass(frozen=True)
class Fit:
    """Coefficients (ms per unit of each of ``terms``) fitted to ``parts`` measured
    entries, with the median and 90th-percentile relative error on them."""

    terms: tuple[str, ...]
    coefficients: np.ndarray
    parts: int
    median_error: float
    p90_error: float
    blocked: bool = False  # the terms of a runtime with a blocked layout (HUGE_MAP)
    channel_block: int = 1  # what convolutions' channels are padded to (CHANNEL_BLOCKS)

    def predict(self, key: str) -> float | None:
        """The part's predicted ms, without the per-call cost; None if ``key`` is not a
        part the model knows, or needs a term no measured part had and no kin of it did
        (:func:`kin`)."""
        row = features(key, self.blocked, self.channel_block)
        if row is None:
            return None
        have = dict(zip(self.terms, self.coefficients, strict=True))
        total = 0.0
        for name, amount in row.items():
            if not amount:
                continue
            coefficient = have.get(name)
            if coefficient is None:
                coefficient = next((have[k] for k in kin(name) if k in have), None)
            if coefficient is None:
                if name.startswith(OPTIONAL):  # e.g. a kind of block none of was
                    continue  # measured: its operators are priced by the "ops" term
                return None
            total += amount * coefficient
        return float(total)

    def lacking(self, key: str) -> list[str]:
        """The terms ``key`` needs that neither the fit nor a kin of them has."""
        row = features(key, self.blocked, self.channel_block) or {}
        return sorted(n for n, v in row.items() if v and not n.startswith(OPTIONAL)
                      and n not in self.terms and not any(k in self.terms for k in kin(n)))


def kin(term: str) -> tuple[str, ...]:
    """The terms that stand in for ``term`` where no measured part had it, nearest first:
    a layer's elements at the other map size, a depthwise kernel's neighbours."""
    if term.startswith("elements_"):
        base = term.removesuffix("_large").removesuffix("_huge")
        return {"": (f"{base}_large", f"{base}_huge"), "_large": (f"{base}_huge", base),
                "_huge": (f"{base}_large", base)}[term[len(base):]]
    if term.startswith("macs_dw"):
        k = int(term[len("macs_dw"):])
        return tuple(f"macs_dw{j}" for j in sorted((3, 5, 7), key=lambda j: (abs(j - k), j))
                     if j != k)
    return ()


# Fewer measured parts than this per term and the fit is not trusted for anything.
MIN_PARTS_PER_FEATURE = 2


def required_parts(measured: Mapping[str, float], *, blocked: bool = False) -> int:
    """How many measured parts a fit to ``measured`` needs: two per term they have."""
    rows = [r for r in (features(k, blocked) for k in measured) if r is not None]
    return MIN_PARTS_PER_FEATURE * len({n for r in rows for n, v in r.items() if v})


def fit(measured: Mapping[str, float], *, blocked: bool = False) -> Fit | None:
    """Fit the model to ``measured`` (key -> ms, less the per-call cost); None when there
    are too few parts to fit it.  ``blocked``: with the terms of a runtime with a blocked
    layout (see HUGE_MAP).  Fitted with each of CHANNEL_BLOCKS: a padding is kept where
    it cuts the median error on ``measured`` by PADDING_GAIN or more, the largest cut
    winning."""
    plain = best = _fit(measured, blocked, 1)
    if plain is None:
        return None
    for block in CHANNEL_BLOCKS[1:]:
        padded = _fit(measured, blocked, block)
        if (padded.median_error <= (1 - PADDING_GAIN) * plain.median_error
                and padded.median_error < best.median_error):
            best = padded
    return best


def _fit(measured: Mapping[str, float], blocked: bool, block: int) -> Fit | None:
    """The model with channels padded to ``block``, fitted to ``measured``."""
    rows, targets = [], []
    for key, ms in measured.items():
        row = features(key, blocked, block)
        if row is not None and ms > 0:
            rows.append(row)
            targets.append(ms)
    terms = tuple(sorted({n for r in rows for n, v in r.items() if v}))
    if not terms or len(rows) < MIN_PARTS_PER_FEATURE * len(terms):
        return None
    a = np.array([[r.get(t, 0.0) for t in terms] for r in rows])
    b = np.array(targets)
    scale = a.max(axis=0)
    weighted = (a / scale) / b[:, None]  # relative error: each row divided by its target
    x = nnls(weighted, np.ones(len(b))) / scale
    errors = np.abs(a @ x - b) / b
    return Fit(terms, x, len(b), float(np.median(errors)), float(np.quantile(errors, 0.9)),
               blocked, block)
