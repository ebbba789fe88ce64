"""The proxy network: how a target spec is adapted for training on small images.

Five stride-2 layers take a 28-32 px image down to 1x1, so the proxy network,
like the CIFAR variants of MobileNet, gives its first stride-2 layer (the stem,
in every MobileNet) stride 1: output stride 32 becomes 16 and a 28 px image ends
at 2x2.  Every later feature map is then a quarter of the target's on each side
(28 px against 224 px / 2), so the proxy costs the same 1/16 share of the target's
MACs in every stage, and the target's trade-offs between stages are kept.  (Also
giving the first downsampling stage stride 1 costs 3x the time on a 2-core CPU.)
Everything else (blocks, kernels, expansions, depths, widths, shortcuts) is the
target's.  The same rule applies to seeds and candidates alike; budgets are
always priced on the unadapted target spec.
"""

from __future__ import annotations

import dataclasses

from mbnas.spec import Arch


def proxy_arch(arch: Arch, *, resolution: int, num_classes: int) -> Arch:
    """``arch`` as trained on ``resolution`` px images with ``num_classes`` classes."""
    stem, stages = arch.stem, list(arch.stages)
    if stem.stride > 1:
        stem = dataclasses.replace(stem, stride=1)
    else:
        for i, stage in enumerate(stages):
            if stage.stride > 1:
                stages[i] = dataclasses.replace(stage, stride=1)
                break
    return dataclasses.replace(arch, stem=stem, stages=tuple(stages), resolution=resolution,
                               num_classes=num_classes)
