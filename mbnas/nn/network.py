"""The one bridge from a spec to PyTorch: :func:`build` turns an Arch into an nn.Module.

Blocks read like the papers' figures and take explicit integers; the resolved
layers come from :func:`mbnas.arch.spec.resolve`, the same ones the cost model prices.
"""

from __future__ import annotations

import torch
from torch import nn

from mbnas.arch.spec import Arch, Block, Network, resolve

_ACTIVATIONS = {"relu": nn.ReLU, "relu6": nn.ReLU6}


class ConvBNAct(nn.Sequential):
    """Conv (no bias, padding k // 2) + batch norm + optional activation."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 1, stride: int = 1,
                 groups: int = 1, activation: str | None = "relu6") -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, groups=groups,
                      bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        if activation is not None:
            layers.append(_ACTIVATIONS[activation](inplace=True))
        super().__init__(*layers)


class DepthwiseSeparable(nn.Module):
    """MobileNetV1 block (Howard et al. 2017, Fig. 3): depthwise then pointwise, both activated."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int,
                 activation: str, residual: bool) -> None:
        super().__init__()
        self.residual = residual
        self.depthwise = ConvBNAct(in_channels, in_channels, kernel, stride, in_channels,
                                   activation)
        self.pointwise = ConvBNAct(in_channels, out_channels, 1, 1, 1, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pointwise(self.depthwise(x))
        return x + out if self.residual else out


class InvertedResidual(nn.Module):
    """MobileNetV2 bottleneck (Sandler et al. 2018, Table 1): expand, depthwise, linear project."""

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, kernel: int,
                 stride: int, activation: str, residual: bool, expand: bool) -> None:
        super().__init__()
        self.residual = residual
        # expand (absent when t = 1)
        self.expand = (ConvBNAct(in_channels, hidden_channels, 1, 1, 1, activation)
                       if expand else nn.Identity())
        # depthwise
        self.depthwise = ConvBNAct(hidden_channels, hidden_channels, kernel, stride,
                                   hidden_channels, activation)
        # project: linear bottleneck, no activation
        self.project = ConvBNAct(hidden_channels, out_channels, 1, 1, 1, activation=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.residual else out


def build_block(block: Block) -> nn.Module:
    """One resolved block as a module."""
    if block.kind == "conv":
        return ConvBNAct(block.in_channels, block.out_channels, block.kernel, block.stride,
                         activation=block.activation)
    if block.kind == "ds":
        return DepthwiseSeparable(block.in_channels, block.out_channels, block.kernel,
                                  block.stride, block.activation, block.residual)
    return InvertedResidual(block.in_channels, block.hidden_channels, block.out_channels,
                            block.kernel, block.stride, block.activation, block.residual,
                            block.expand)


class MobileNet(nn.Module):
    """Stem, stages and head (``features``), global average pool, linear classifier."""

    def __init__(self, network: Network, dropout: float = 0.0) -> None:
        super().__init__()
        self.features = nn.Sequential(*(build_block(b) for b in network.blocks))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Linear(network.features, network.num_classes)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x)).flatten(1)
        return self.classifier(self.dropout(x))


def _init_weights(model: nn.Module) -> None:
    # The usual MobileNet initialisation (as in torchvision and timm).
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


def build(arch: Arch | Network, *, dropout: float = 0.0) -> MobileNet:
    """The PyTorch module for ``arch`` (freshly initialised)."""
    network = arch if isinstance(arch, Network) else resolve(arch)
    return MobileNet(network, dropout=dropout)
