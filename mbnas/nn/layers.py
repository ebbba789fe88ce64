"""Layers shared by every block kind: conv + batch norm + activation, and MobileNetV3's
squeeze-and-excitation.  ``mbnas export`` copies this source into ``model.py`` as it is,
so it is kept black-clean at 88 columns and needs nothing but torch."""

from __future__ import annotations

import torch
from torch import nn

from mbnas.arch.spec import ACTIVATION_MODULES

ACTIVATIONS = {name: getattr(nn, cls) for name, cls in ACTIVATION_MODULES.items()}


class ConvBNAct(nn.Sequential):
    """Conv (no bias, padding k // 2) + batch norm + optional activation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int = 1,
        stride: int = 1,
        groups: int = 1,
        activation: str | None = "relu6",
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel,
                stride,
                kernel // 2,
                groups=groups,
                bias=False,
            ),
            nn.BatchNorm2d(out_channels),
        ]
        if activation is not None:
            layers.append(ACTIVATIONS[activation](inplace=True))
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation as in MobileNetV3 (Howard et al. 2019, Fig. 4): pool, 1x1
    conv to ``squeeze`` channels, ReLU, 1x1 conv back, hard-sigmoid gate, rescale."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeeze, 1)
        self.act = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(squeeze, channels, 1)
        self.gate = nn.Hardsigmoid(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean((2, 3), keepdim=True)
        scale = self.gate(self.expand(self.act(self.reduce(scale))))
        return x * scale
