"""The proxy network: how a target spec is adapted for training on small images.

Five stride-2 layers take a 28-32 px image down to 1x1, so the proxy network,
like the CIFAR variants of MobileNetV2, gives the stem and the first
downsampling stage stride 1 (output stride 32 becomes 8: 28 px ends at 4x4).
Everything else (blocks, kernels, expansions, depths, widths, shortcuts) is the
target's.  The same rule applies to seeds and candidates alike; budgets are
always priced on the unadapted target spec.
"""

from __future__ import annotations

import dataclasses

from mbnas.spec import Arch


def proxy_arch(arch: Arch, *, resolution: int, num_classes: int) -> Arch:
    """``arch`` as trained on ``resolution`` px images with ``num_classes`` classes."""
    stages = list(arch.stages)
    for i, stage in enumerate(stages):
        if stage.stride > 1:
            stages[i] = dataclasses.replace(stage, stride=1)
            break
    return dataclasses.replace(
        arch,
        stem=dataclasses.replace(arch.stem, stride=1),
        stages=tuple(stages),
        resolution=resolution,
        num_classes=num_classes,
    )
