"""The proxy protocol: which data, how much of it, and how long each candidate trains.

Torch-free: the command line and the search read it before anything is built.
One :class:`Protocol` is shared by ``mbnas train``, ``mbnas baseline`` and every
trial of ``mbnas search``, so that seeds and candidates are scored alike.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from mbnas.data.registry import DATA_ENV, DEFAULT_DATASET, DEFAULT_VAL_SIZE, dataset_kind
from mbnas.errors import MbnasError

__all__ = ["ADAPTATIONS", "DATA_ENV", "DEFAULT_DATASET", "DEFAULT_SUBSET", "DEFAULT_VAL_SIZE",
           "SEARCH_SUBSET",
           "DEVICES", "Protocol", "TrainConfig", "absolute"]

DEVICES = ("auto", "cpu", "cuda")
# How a target spec is adapted to small images (mbnas.training.proxy): how many of its
# leading stride-2 layers train at stride 1.
ADAPTATIONS = {"none": 0, "stem": 1, "first2": 2}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a proxy training, apart from the architecture and data."""

    epochs: int = 3
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 4e-5
    label_smoothing: float = 0.1
    warmup_epochs: float = 0.3
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    channels_last: bool = True
    amp: bool = True  # CUDA only
    proxy_resolution: int | None = None  # images resized to this side; None: the data's own
    proxy_adapt: str = "stem"  # a key of ADAPTATIONS

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise MbnasError(f"epochs: {self.epochs} is not allowed; it must be at least 1")
        if self.batch_size < 1:
            raise MbnasError(f"batch size: {self.batch_size} must be at least 1")
        if self.device not in DEVICES:
            raise MbnasError(f"device: {self.device!r} is not allowed; choose one of "
                             f"{', '.join(DEVICES)}")
        if self.threads is not None and self.threads < 1:
            raise MbnasError(f"threads: {self.threads} must be at least 1")
        if self.warmup_epochs < 0:
            raise MbnasError(f"warm-up: {self.warmup_epochs} epochs is not allowed; it must "
                             "be 0 or more")
        if self.proxy_resolution is not None and self.proxy_resolution < 8:
            raise MbnasError(f"proxy resolution: {self.proxy_resolution} px is not allowed; "
                             "it must be at least 8")
        if self.proxy_adapt not in ADAPTATIONS:
            raise MbnasError(f"proxy adaptation: {self.proxy_adapt!r} is not allowed; choose "
                             f"one of {', '.join(ADAPTATIONS)}")


# Chosen with `mbnas baseline` (see docs/proxy-protocol.md): 3 epochs on 6,000
# Fashion-MNIST images keep a full-width MobileNetV2 trial under a minute on 2 cores.
DEFAULT_SUBSET = 6_000
# What a search's candidates train on by default: half the images for twice the
# candidates (20 trials), in the same time.  Three searches so found winners at 85.62 +-
# 0.50% test accuracy under the benchmark's common protocol, where 10 candidates on 6,000
# images found 83.77 +- 0.71% (two searches; bench/search_quality/cheap20/, default/).
SEARCH_SUBSET = 3_000


def absolute(path: str) -> str:
    """``path`` made absolute (``~`` expanded), as the trainings see it wherever they run."""
    import os

    return os.path.abspath(os.path.expanduser(path))


@dataclass(frozen=True)
class Protocol:
    dataset: str = DEFAULT_DATASET
    data_dir: str | None = None
    subset: int | None = DEFAULT_SUBSET
    val_size: int = DEFAULT_VAL_SIZE
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        dataset_kind(self.dataset)  # a registered data set, or one line naming them
        if self.subset is not None and self.subset < 1:
            raise MbnasError(f"subset: {self.subset} must be at least 1 (or omitted for all)")
        if self.val_size < 1:
            raise MbnasError(f"val size: {self.val_size} must be at least 1")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def with_absolute_paths(self) -> Protocol:
        """This protocol with its data folder absolute: a Ray worker runs in a folder of its
        own, where a relative path names another folder (or none)."""
        if not self.data_dir or self.data_dir == absolute(self.data_dir):
            return self
        return dataclasses.replace(self, data_dir=absolute(self.data_dir))

    def fingerprint(self) -> dict:
        """What decides the trainings' results: all but the seed, the device, the thread
        count and where the data lie."""
        data = self.to_dict()
        data.pop("data_dir")
        for key in ("seed", "device", "threads"):
            data["train"].pop(key)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Protocol:
        return cls(**{**data, "train": TrainConfig(**data.get("train", {}))})
