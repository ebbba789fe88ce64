"""The one bridge from a spec to PyTorch: :func:`build` turns an Arch into an nn.Module.

Each block is made by its kind (:mod:`mbnas.blocks`) from the resolved layers of
:func:`mbnas.arch.spec.resolve`, the same ones the cost model prices.  :class:`Network`
is also what ``mbnas export`` writes into ``model.py``, copied from this source.
"""

from __future__ import annotations

import torch
from torch import nn

from mbnas.arch.kinds import kind
from mbnas.arch.spec import Arch, resolve
from mbnas.arch.spec import Network as Resolved
from mbnas.nn.layers import ACTIVATIONS
from mbnas.resources import check_network_fits


class Network(nn.Module):
    """Blocks (``features``), global average pool, an optional hidden fully connected
    layer (MobileNetV3's efficient last stage), dropout and the linear classifier."""

    def __init__(
        self,
        blocks: list[nn.Module],
        features: int,
        num_classes: int,
        hidden_fc: int = 0,
        fc_activation: str = "relu6",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.hidden = (
            nn.Sequential(
                nn.Linear(features, hidden_fc), ACTIVATIONS[fc_activation](inplace=True)
            )
            if hidden_fc
            else nn.Identity()
        )
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Linear(hidden_fc or features, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.hidden(self.pool(self.features(x)).flatten(1))
        return self.classifier(self.dropout(x))


def init_weights(model: nn.Module) -> None:
    """The usual MobileNet initialisation (as in torchvision and timm)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


def build(arch: Arch | Resolved, *, dropout: float = 0.0) -> Network:
    """The PyTorch module for ``arch`` (freshly initialised)."""
    net = arch if isinstance(arch, Resolved) else resolve(arch)
    check_network_fits(net)  # refuse up front what would meet the OOM killer (issue 18)
    blocks = [kind(b.kind).module(b) for b in net.blocks]
    return Network(
        blocks, net.features, net.num_classes, net.hidden_fc, net.fc_activation, dropout
    )
