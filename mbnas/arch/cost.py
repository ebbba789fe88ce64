"""Analytic cost of an architecture, under the MobileNet papers' convention.

Multiply-adds: every convolution and the final fully connected layer, one per
multiply-add (``K*K*(C_in/groups)*C_out*H_out*W_out`` for a conv, ``C_in*C_out``
for the classifier); batch norm, activations, pooling, residual adds and
biases are not counted.  Parameters are counted two ways: ``params`` is every
trainable parameter of the built PyTorch module (conv weights, BN gamma and
beta, classifier weight and bias) and ``weights`` is conv + classifier weights
only, the V1 paper's convention.

No torch here: pricing a spec is pure arithmetic on :func:`mbnas.arch.spec.resolve`.
"""

from __future__ import annotations

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


def layer_costs(arch: Arch | Network) -> list[LayerCost]:
    """Every priced layer of ``arch`` in order (the V1 paper's Table 2 breakdown)."""
    net = arch if isinstance(arch, Network) else resolve(arch)
    rows = []
    for block in net.blocks:
        for conv in block.convs():
            if conv.groups > 1:
                kind = "depthwise"
            elif conv.kernel == 1:
                kind = "pointwise"
            else:
                kind = "conv"
            bn = 2 * conv.out_channels  # gamma and beta
            cost = Cost(conv.macs, conv.weights + bn, conv.weights)
            rows.append(LayerCost(conv.name, kind, conv.in_channels, conv.out_channels,
                                  conv.kernel, conv.stride, conv.out_size, cost))
    fc = net.features * net.num_classes
    rows.append(LayerCost("classifier", "fc", net.features, net.num_classes, 1, 1, 1,
                          Cost(fc, fc + net.num_classes, fc)))
    return rows


def count(arch: Arch | Network) -> Cost:
    """Total multiply-adds, PyTorch parameters and paper-style weights of ``arch``.

    The same sums as :func:`layer_costs`, without building a row per layer: this is
    the budget check run for every sampled candidate.
    """
    net = arch if isinstance(arch, Network) else resolve(arch)
    macs = weights = norm = 0
    for block in net.blocks:
        for conv in block.convs():
            w = conv.kernel * conv.kernel * (conv.in_channels // conv.groups) * conv.out_channels
            out = (conv.in_size - 1) // conv.stride + 1
            macs += w * out * out
            weights += w
            norm += 2 * conv.out_channels
    fc = net.features * net.num_classes
    return Cost(macs + fc, weights + norm + fc + net.num_classes, weights + fc)


def macs(arch: Arch) -> int:
    """Multiply-adds of ``arch``: the figure a search budget is checked against."""
    return count(arch).macs
