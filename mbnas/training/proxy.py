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

Both are protocol options (``--proxy-adapt``, ``--proxy-resolution``): ``none`` keeps
the target's strides, ``first2`` also gives the second stride-2 layer stride 1
(output stride 8, ~3x the time); a proxy resolution resizes every split once, at load
(e.g. 28 px Fashion-MNIST to 32 px, so that five halvings divide it evenly).
"""

from __future__ import annotations

import dataclasses
import functools

from mbnas.arch.spec import Arch
from mbnas.training.protocol import ADAPTATIONS, Protocol


def proxy_arch(arch: Arch, *, resolution: int, num_classes: int, adapt: str = "stem") -> Arch:
    """``arch`` as trained on ``resolution`` px images with ``num_classes`` classes: its
    first ``ADAPTATIONS[adapt]`` stride-2 layers (stem first, then stages) at stride 1."""
    left = ADAPTATIONS[adapt]
    stem, stages = arch.stem, list(arch.stages)
    if left and stem.stride > 1:
        stem = dataclasses.replace(stem, stride=1)
        left -= 1
    for i, stage in enumerate(stages):
        if left and stage.stride > 1:
            stages[i] = dataclasses.replace(stage, stride=1)
            left -= 1
    return dataclasses.replace(arch, stem=stem, stages=tuple(stages), resolution=resolution,
                               num_classes=num_classes)


@functools.lru_cache(maxsize=2)
def _load(dataset: str, data_dir: str | None, val_size: int, subset: int | None,
          resolution: int | None):
    from mbnas.data import load_dataset

    data = load_dataset(dataset, data_dir, val_size=val_size, subset=subset,
                        image_size=resolution)
    if resolution and resolution != data.size:
        data = resized(data, resolution)
    return data


def resized(data, size: int):
    """``data`` with every split resized to ``size`` x ``size`` (bilinear, antialiased when
    shrinking), still uint8; mean and std are measured again on the resized ``train``."""
    import torch.nn.functional as F

    from mbnas.data import ImageSet
    from mbnas.data._sets import channel_stats
    from mbnas.resources import FLOAT_BYTES, check_fits, image_bytes

    # Refused before allocating (issue 18: 100000 px asked for terabytes): every split's uint8
    # result, and while the largest split is resized, its float copy and float result.
    counts = [len(getattr(data, k)) for k in ("train", "val", "test")]
    channels, largest = data.channels, max(counts)
    check_fits(image_bytes(sum(counts), size, channels)
               + FLOAT_BYTES * image_bytes(largest, data.size, channels)
               + FLOAT_BYTES * image_bytes(largest, size, channels),
               f"proxy resolution {size}: resizing the {sum(counts):,} images ({channels} x "
               f"{data.size} x {data.size}) to {size} x {size}",
               f"use a smaller --proxy-resolution (the images are {data.size} px)")

    def resize(images):
        out = F.interpolate(images.float(), size=(size, size), mode="bilinear",
                            align_corners=False, antialias=size < images.shape[-1])
        return out.round_().clamp_(0, 255).to(images.dtype)

    splits = {k: ImageSet(resize(getattr(data, k).images), getattr(data, k).labels)
              for k in ("train", "val", "test")}
    mean, std = channel_stats(splits["train"].images)
    return dataclasses.replace(data, **splits, mean=mean, std=std)


def load_data(protocol: Protocol):
    """The protocol's data set at its proxy resolution, loaded once per process (Ray reuses
    worker processes)."""
    return _load(protocol.dataset, protocol.data_dir, protocol.val_size, protocol.subset,
                 protocol.train.proxy_resolution)


def proxy_trainer(arch: Arch, protocol: Protocol, *, progress=None):
    """A seeded :class:`~mbnas.training.trainer.Trainer` for the proxy of the target ``arch``."""
    from mbnas.nn.network import build
    from mbnas.training.trainer import Trainer, seed_everything

    data = load_data(protocol)
    proxy = proxy_arch(arch, resolution=data.size, num_classes=data.num_classes,
                       adapt=protocol.train.proxy_adapt)
    seed_everything(protocol.train.seed)
    trainer = Trainer(build(proxy), data, protocol.train, progress=progress)
    trainer.arch = proxy
    return trainer


def weights_file(trainer, target: Arch) -> dict:
    """What a saved ``model.pt`` / trial weights file holds: the proxy network's
    state_dict under ``model`` (as :func:`mbnas.export.read_state_dict` expects), the
    proxy spec it was built from, the target spec it stands for, and under ``input`` what
    the weights expect of an image (the training data's name, channels, side, per-channel
    mean and std on the 0-1 scale, class names), which ``mbnas export`` writes out."""
    from mbnas.arch.encoding import encode

    data = trainer.data
    return {"model": trainer.model.state_dict(), "arch": encode(trainer.arch),
            "target": encode(target),
            "input": {"dataset": data.name, "channels": data.channels, "size": data.size,
                      "mean": list(data.mean), "std": list(data.std),
                      "classes": list(data.classes)}}
