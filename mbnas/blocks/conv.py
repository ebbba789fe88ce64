"""conv: one full convolution + batch norm + activation: the stem and the head's 1x1 conv
(V1 Table 1 and V2 Table 2, first and last rows).  Not a stage's block."""

from __future__ import annotations

from functools import cache

from mbnas.arch.kinds import Block, BlockKind, Conv


class ConvKind(BlockKind):
    name = "conv"
    summary = "a full conv + BN + activation (stem, head)"
    stage = False
    module_args = ("in_channels", "out_channels", "kernel", "stride")
    module_keywords = ("activation",)

    def convs(self, block: Block) -> tuple[Conv, ...]:
        return (Conv(block.name, block.in_channels, block.out_channels, block.kernel,
                     block.stride, 1, block.in_size),)

    @cache  # noqa: B019 - one instance per kind, kept for the process
    def module_class(self) -> type:
        from mbnas.nn.layers import ConvBNAct

        return ConvBNAct

    def module_source(self) -> str:
        return ""  # ConvBNAct is one of the shared layers, exported with them


KIND = ConvKind()
