"""ir: MobileNetV2's inverted residual with linear bottleneck (Sandler et al. 2018,
Table 1), and MobileNetV3's version of it (Howard et al. 2019, Fig. 4): a 1x1 expansion
(absent when the hidden width equals the input), a k x k depthwise conv, optional
squeeze-and-excitation, and a linear 1x1 projection."""

from __future__ import annotations

from functools import cache

from mbnas.arch.kinds import (
    Block,
    BlockKind,
    Conv,
    conv_out,
    squeeze_excite_convs,
)
from mbnas.errors import MbnasError


class InvertedResidualKind(BlockKind):
    name = "ir"
    summary = "inverted residual, MobileNetV2/V3"
    options = ("expansion", "expanded", "se")
    numeric_tokens = {"e": "expansion", "x": "expanded"}
    flag_tokens = {"se": ("se", True)}
    module_args = ("in_channels", "hidden_channels", "out_channels", "kernel", "stride",
                   "activation", "residual", "se_channels")

    def check(self, stage) -> None:
        super().check(stage)
        if stage.expanded is not None and stage.expansion != 1:
            raise MbnasError(f"expanded: give the hidden width either as a ratio "
                             f"(expansion {stage.expansion}) or as channels (expanded "
                             f"{stage.expanded}), not both")

    def encode_options(self, stage) -> list[str]:
        width = [f"x{stage.expanded}"] if stage.expanded is not None \
            else [f"e{stage.expansion}"]
        return width + (["se"] if stage.se else [])

    def hidden_channels(self, stage, in_channels: int, scale) -> int:
        if stage.expanded is not None:  # V3's tables: expanded channels, width-scaled
            return scale(stage.expanded)
        # torchvision's rule; equals tf-slim's for integer ratios on multiples of 8.
        return max(1, int(round(in_channels * stage.expansion)))

    def convs(self, block: Block) -> tuple[Conv, ...]:
        n, size, hidden = block.name, block.in_size, block.hidden_channels
        expand = ((Conv(f"{n}.expand", block.in_channels, hidden, 1, 1, 1, size),)
                  if hidden != block.in_channels else ())
        return (
            *expand,
            Conv(f"{n}.depthwise", hidden, hidden, block.kernel, block.stride, hidden, size),
            *squeeze_excite_convs(block),
            Conv(f"{n}.project", hidden, block.out_channels, 1, 1, 1,
                 conv_out(size, block.stride)),
        )

    @cache  # noqa: B019 - one instance per kind, kept for the process
    def module_class(self) -> type:
        import torch
        from torch import nn

        from mbnas.nn.layers import ConvBNAct, SqueezeExcite

        class InvertedResidual(nn.Module):
            """MobileNetV2 bottleneck (Sandler et al. 2018, Table 1), with V3's
            squeeze-and-excitation (Howard et al. 2019, Fig. 4)."""

            def __init__(
                self,
                in_channels: int,
                hidden_channels: int,
                out_channels: int,
                kernel: int,
                stride: int,
                activation: str,
                residual: bool,
                se_channels: int = 0,
            ) -> None:
                super().__init__()
                self.residual = residual
                hidden = hidden_channels
                # expand: 1x1 conv to the hidden width (absent when it equals the input)
                self.expand = (
                    ConvBNAct(in_channels, hidden, 1, 1, 1, activation)
                    if hidden != in_channels
                    else nn.Identity()
                )
                # depthwise: one k x k filter per channel
                self.depthwise = ConvBNAct(hidden, hidden, kernel, stride, hidden, activation)
                self.se = SqueezeExcite(hidden, se_channels) if se_channels else nn.Identity()
                # project: linear bottleneck, no activation
                self.project = ConvBNAct(hidden, out_channels, 1, 1, 1, activation=None)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                out = self.project(self.se(self.depthwise(self.expand(x))))
                return x + out if self.residual else out

        return InvertedResidual


KIND = InvertedResidualKind()
