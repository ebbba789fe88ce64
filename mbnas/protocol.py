"""The proxy protocol: which data, how much of it, and how long each candidate trains.

Torch-free: the command line and the search read it before anything is built.
One :class:`Protocol` is shared by ``mbnas train``, ``mbnas baseline`` and every
trial of ``mbnas search``, so that seeds and candidates are scored alike.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field

from mbnas.errors import MbnasError
from mbnas.spec import Arch

DEVICES = ("auto", "cpu", "cuda")
DATASETS = ("fashion-mnist", "cifar10", "cifar100", "folder", "synthetic")


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


DEFAULT_DATASET = "fashion-mnist"
# Chosen with `mbnas baseline` (see README, "Proxy protocol"): 3 epochs on 6,000
# Fashion-MNIST images keep a full-width MobileNetV2 trial under a minute on 2 cores.
DEFAULT_SUBSET = 6_000
DEFAULT_VAL_SIZE = 2_000


@dataclass(frozen=True)
class Protocol:
    dataset: str = DEFAULT_DATASET
    data_dir: str | None = None
    subset: int | None = DEFAULT_SUBSET
    val_size: int = DEFAULT_VAL_SIZE
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise MbnasError(f"--dataset: {self.dataset!r} is not allowed; choose one of "
                             f"{', '.join(DATASETS)}")
        if self.subset is not None and self.subset < 1:
            raise MbnasError(f"subset: {self.subset} must be at least 1 (or omitted for all)")
        if self.val_size < 1:
            raise MbnasError(f"val size: {self.val_size} must be at least 1")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Protocol:
        return cls(**{**data, "train": TrainConfig(**data.get("train", {}))})


@functools.lru_cache(maxsize=2)
def _load(dataset: str, data_dir: str | None, val_size: int, subset: int | None):
    from mbnas.data import load_dataset

    return load_dataset(dataset, data_dir, val_size=val_size, subset=subset)


def load_data(protocol: Protocol):
    """The protocol's data set, loaded once per process (Ray reuses worker processes)."""
    return _load(protocol.dataset, protocol.data_dir, protocol.val_size, protocol.subset)


def proxy_trainer(arch: Arch, protocol: Protocol, *, progress=None):
    """A seeded :class:`~mbnas.train.Trainer` for the proxy network of the target ``arch``."""
    from mbnas.builder import build
    from mbnas.proxy import proxy_arch
    from mbnas.train import Trainer, seed_everything

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
    from mbnas.encoding import encode

    return {"model": trainer.model.state_dict(), "arch": encode(trainer.arch),
            "target": encode(target)}
