"""ds: MobileNetV1's depthwise-separable block (Howard et al. 2017, Fig. 3): a k x k
depthwise conv and a 1x1 pointwise conv, each with batch norm and activation, with
optional squeeze-and-excitation between them (as MnasNet and timm place it)."""

from __future__ import annotations

from functools import cache

from mbnas.arch.kinds import (
    Block,
    BlockKind,
    Conv,
    conv_out,
    squeeze_excite_convs,
)


class DepthwiseSeparableKind(BlockKind):
    name = "ds"
    summary = "depthwise-separable, MobileNetV1"
    options = ("se",)
    flag_tokens = {"se": ("se", True)}
    module_args = ("in_channels", "out_channels", "kernel", "stride", "activation",
                   "residual", "se_channels")

    def encode_options(self, stage) -> list[str]:
        return ["se"] if stage.se else []

    def convs(self, block: Block) -> tuple[Conv, ...]:
        n, c, size = block.name, block.in_channels, block.in_size
        return (
            Conv(f"{n}.depthwise", c, c, block.kernel, block.stride, c, size),
            *squeeze_excite_convs(block),
            Conv(f"{n}.pointwise", c, block.out_channels, 1, 1, 1,
                 conv_out(size, block.stride)),
        )

    @cache  # noqa: B019 - one instance per kind, kept for the process
    def module_class(self) -> type:
        import torch
        from torch import nn

        from mbnas.nn.layers import ConvBNAct, SqueezeExcite

        class DepthwiseSeparable(nn.Module):
            """MobileNetV1 block (Howard et al. 2017, Fig. 3): depthwise, pointwise."""

            def __init__(
                self,
                in_channels: int,
                out_channels: int,
                kernel: int,
                stride: int,
                activation: str,
                residual: bool,
                se_channels: int = 0,
            ) -> None:
                super().__init__()
                self.residual = residual
                # depthwise: one k x k filter per channel
                self.depthwise = ConvBNAct(
                    in_channels, in_channels, kernel, stride, in_channels, activation
                )
                self.se = (
                    SqueezeExcite(in_channels, se_channels) if se_channels else nn.Identity()
                )
                # pointwise: 1x1 conv mixing channels
                self.pointwise = ConvBNAct(in_channels, out_channels, 1, 1, 1, activation)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                out = self.pointwise(self.se(self.depthwise(x)))
                return x + out if self.residual else out

        return DepthwiseSeparable


KIND = DepthwiseSeparableKind()
