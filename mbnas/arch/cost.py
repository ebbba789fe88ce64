"""Analytic cost of an architecture, under the MobileNet papers' convention.

Multiply-adds: every convolution and the fully connected layers, one per
multiply-add (``K*K*(C_in/groups)*C_out*H_out*W_out`` for a conv, ``C_in*C_out``
for the classifier); batch norm, activations, pooling, residual adds and
biases are not counted.  Parameters are counted two ways: ``params`` is every
trainable parameter of the built PyTorch module (conv weights, BN gamma and
beta, classifier weight and bias) and ``weights`` is conv + classifier weights
only, the V1 paper's convention.

No torch here: pricing a spec is pure arithmetic on :func:`mbnas.arch.spec.resolve`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from mbnas.arch.spec import Arch, Network, resolve


@dataclass(frozen=True)
class Cost:
    macs: int
    params: int
    weights: int

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.macs + other.macs, self.params + other.params,
                    self.weights + other.weights)


ZERO = Cost(0, 0, 0)


@dataclass(frozen=True)
class LayerCost:
    """One priced layer: a convolution (with its batch norm) or the classifier."""

    name: str
    kind: str  # conv, depthwise, pointwise, fc
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    out_size: int
    cost: Cost

    @property
    def group(self) -> str:
        """What the layer belongs to: ``stem``, ``stage3``, ``head`` or ``classifier``."""
        return self.name.split(".", 1)[0]


def _conv_kind(conv) -> str:
    if not conv.norm:
        return "se"  # squeeze-and-excitation's 1x1 convs on the pooled vector
    if conv.groups > 1:
        return "depthwise"
    return "pointwise" if conv.kernel == 1 else "conv"


def layer_costs(arch: Arch | Network) -> list[LayerCost]:
    """Every priced layer of ``arch`` in order (the V1 paper's Table 2 breakdown)."""
    net = arch if isinstance(arch, Network) else resolve(arch)
    rows = []
    for block in net.blocks:
        for conv in block.convs():
            cost = Cost(conv.macs, conv.params, conv.weights)
            rows.append(LayerCost(conv.name, _conv_kind(conv), conv.in_channels,
                                  conv.out_channels, conv.kernel, conv.stride, conv.out_size,
                                  cost))
    for name, inputs, outputs in net.fcs():
        fc = inputs * outputs
        rows.append(LayerCost(name, "fc", inputs, outputs, 1, 1, 1, Cost(fc, fc + outputs, fc)))
    return rows


def count(arch: Arch | Network) -> Cost:
    """Total multiply-adds, PyTorch parameters and paper-style weights of ``arch``.

    The same sums as :func:`layer_costs`, without building a row per layer: this is
    the budget check run for every sampled candidate.
    """
    net = arch if isinstance(arch, Network) else resolve(arch)
    macs = weights = params = 0
    for block in net.blocks:
        for conv in block.convs():
            w = conv.kernel * conv.kernel * (conv.in_channels // conv.groups) * conv.out_channels
            out = (conv.in_size - 1) // conv.stride + 1
            macs += w * out * out
            weights += w
            params += w + 2 * conv.out_channels * conv.norm + conv.out_channels * conv.bias
    for _, inputs, outputs in net.fcs():
        macs += inputs * outputs
        weights += inputs * outputs
        params += inputs * outputs + outputs
    return Cost(macs, params, weights)


def macs(arch: Arch) -> int:
    """Multiply-adds of ``arch``: the figure a search budget is checked against."""
    return count(arch).macs


# Widths are searched in thousandths: finer than any channel-rounding step of a MobileNet.
WIDTH_STEP = 0.001
MAX_WIDTH = 10.0
# For a cost that can fall as the width grows (latency: channel counts off ONNX Runtime's
# blocking cost up to 1.8x those beside them, mbnas.latency.fit.ALIGNMENT), the widths
# above the first one over budget are scanned while they are priced within this many
# times the limit: beyond it, not even a network that suits the runtime can fit.
NON_MONOTONE_REACH = 2.0


def widest_within(arch: Arch, budget) -> Arch | None:
    """``arch`` at the largest width multiplier whose cost fits ``budget`` (MACs, or a
    :class:`mbnas.costs.Budget`) with its channels rounded by its own rule, written with
    as few decimals as give that network: what a practitioner scales a MobileNet to without
    a search.  None when even the narrowest width is over budget.  MACs and parameters
    grow with the width, step by rounding step, so a bisection over thousandths finds it;
    the next wider network is over budget.  A cost that can fall as the width grows
    (``Metric.monotone`` false: latency) is then scanned further up, while it stays within
    :data:`NON_MONOTONE_REACH` times its limit, for a wider network that fits."""
    from mbnas.costs import Budget

    limits = budget if isinstance(budget, Budget) else Budget.of(macs=budget)

    def at(k: int) -> Arch:
        return dataclasses.replace(arch, width=k * WIDTH_STEP)

    def fits(k: int) -> bool:
        return limits.fits(at(k))

    lo, hi = 1, round(MAX_WIDTH / WIDTH_STEP)
    if not fits(lo):
        return None
    if fits(hi):
        return dataclasses.replace(arch, width=MAX_WIDTH)
    while hi - lo > 1:  # fits(lo), not fits(hi)
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    if not all(m.monotone for m in limits.metrics):
        k, seen = lo + 1, macs(at(lo))
        while k < round(MAX_WIDTH / WIDTH_STEP):
            network = at(k)
            if (now := macs(network)) != seen:  # a new network (same MACs: same channels)
                seen = now
                load = limits.load(network)
                if load > NON_MONOTONE_REACH:
                    break
                if load <= 1:
                    lo = k
            k += 1
    best = dataclasses.replace(arch, width=round(lo * WIDTH_STEP, 3))
    target = macs(best)  # the same MACs: the same channels, the same network
    for decimals in (1, 2):  # the shortest width that builds the same network
        width = round(int(lo * WIDTH_STEP * 10**decimals) / 10**decimals, decimals)
        if width > 0:
            short = dataclasses.replace(arch, width=width)
            if macs(short) == target:
                return short
    return best
