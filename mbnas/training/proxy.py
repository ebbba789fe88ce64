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
import functools

from mbnas.arch.spec import Arch
from mbnas.training.protocol import Protocol


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


@functools.lru_cache(maxsize=2)
def _load(dataset: str, data_dir: str | None, val_size: int, subset: int | None):
    from mbnas.data import load_dataset

    return load_dataset(dataset, data_dir, val_size=val_size, subset=subset)


def load_data(protocol: Protocol):
    """The protocol's data set, loaded once per process (Ray reuses worker processes)."""
    return _load(protocol.dataset, protocol.data_dir, protocol.val_size, protocol.subset)


def proxy_trainer(arch: Arch, protocol: Protocol, *, progress=None):
    """A seeded :class:`~mbnas.training.trainer.Trainer` for the proxy of the target ``arch``."""
    from mbnas.nn.network import build
    from mbnas.training.trainer import Trainer, seed_everything

    data = load_data(protocol)
    proxy = proxy_arch(arch, resolution=data.size, num_classes=data.num_classes)
    seed_everything(protocol.train.seed)
    trainer = Trainer(build(proxy), data, protocol.train, progress=progress)
    trainer.arch = proxy
    return trainer


def weights_file(trainer, target: Arch) -> dict:
    """What a saved ``model.pt`` / trial weights file holds: the proxy network's
    state_dict under ``model`` (as :func:`mbnas.export.read_state_dict` expects), the
    proxy spec it was built from and the target spec it stands for."""
    from mbnas.arch.encoding import encode

    return {"model": trainer.model.state_dict(), "arch": encode(trainer.arch),
            "target": encode(target)}
