"""What the weights expect of an image: :class:`Inputs`, ``arch.json``'s ``input`` and the
constants ``model.py``'s ``preprocess`` applies.
"""

from __future__ import annotations

import dataclasses
import enum
import math

from mbnas.arch.spec import Arch
from mbnas.errors import MbnasError

# --- what the weights expect of an image -------------------------------------------------


class Normalisation(str, enum.Enum):
    """Where an export's mean and std come from."""

    TRAINED = "trained"  # recorded from the training images with the weights
    UNKNOWN = "unknown"  # trained weights, but their file predates the record
    NONE = "none"  # freshly initialised weights: trained on no images


@dataclasses.dataclass(frozen=True)
class Inputs:
    """What an exported network's weights expect of an image: ``arch.json``'s ``input``
    and the constants of ``model.py`` that its ``preprocess`` applies.

    Training (:mod:`mbnas.data`) feeds ``(x / 255 - mean) / std`` of uint8 images at the
    network's resolution, gray repeated to three channels; ``mean`` and ``std`` are those
    of the training split, per channel, on the 0-1 scale.
    """

    normalisation: Normalisation
    dataset: str | None = None
    size: int | None = None  # side of the training images (the network's resolution)
    image_channels: int | None = None  # of the training images: 1 (gray) or 3
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    classes: tuple[str, ...] | None = None
    note: str = ""

    @classmethod
    def from_record(cls, record) -> Inputs:
        """The ``input`` entry of a weights file (see mbnas.training.proxy.weights_file)."""
        if not isinstance(record, dict):
            raise MbnasError(f"input: expected a dict (dataset, channels, size, mean, std, "
                             f"classes), got {type(record).__name__}")
        try:
            mean, std = _stats("mean", record["mean"]), _stats("std", record["std"])
            channels, size = int(record["channels"]), int(record["size"])
            classes = record.get("classes")
            classes = None if classes is None else tuple(str(c) for c in classes)
        except (KeyError, TypeError, ValueError) as err:
            raise MbnasError(f"input: expected dataset, channels, size, mean, std and "
                             f"classes, got {record!r} ({type(err).__name__}: {err})") from None
        if channels not in (1, 3) or len(mean) not in (1, channels) or len(std) != len(mean):
            raise MbnasError(f"input: {channels} channel(s) with mean {mean} and std {std}; "
                             "expected 1 or 3 channels and one mean and std per channel")
        if any(s <= 0 for s in std):
            raise MbnasError(f"input: std {std} is not allowed; every value must be over 0")
        dataset = record.get("dataset")
        return cls(Normalisation.TRAINED, dataset=None if dataset is None else str(dataset),
                   size=size, image_channels=channels, mean=mean, std=std, classes=classes,
                   note=f"from the {dataset} training images the weights were trained on")

    @classmethod
    def unknown(cls, why: str, *, dataset: str | None = None) -> Inputs:
        """Trained weights whose file does not say how their images were normalised."""
        return cls(Normalisation.UNKNOWN, dataset=dataset, note=why)

    @classmethod
    def untrained(cls) -> Inputs:
        """Freshly initialised weights: only scaling to 0-1, until trained on data."""
        return cls(Normalisation.NONE, mean=(0.0,), std=(1.0,),
                   note="none: the weights are freshly initialised, trained on no images; "
                        "preprocess only scales to 0-1 unless given the mean and std of "
                        "the images you train it on")

    def to_dict(self, arch: Arch) -> dict:
        return {"size": arch.resolution, "channels": 3, "image_channels": self.image_channels,
                "dataset": self.dataset, "normalisation": self.normalisation.value,
                "mean": _list(self.mean), "std": _list(self.std),
                "classes": _list(self.classes), "note": self.note,
                "preprocess": "model.preprocess(images): uint8 0-255 or float 0-1, "
                              "N x C x H x W or N x H x W, 1 or 3 channels -> "
                              f"float N x 3 x {arch.resolution} x {arch.resolution}, "
                              "(x - mean) / std"}


def _list(values):
    return None if values is None else list(values)


def _stats(what: str, values) -> tuple[float, ...]:
    out = tuple(float(v) for v in values)
    if not out or not all(math.isfinite(v) for v in out):
        raise ValueError(f"{what} must be finite numbers, got {values!r}")
    return out


def _check_inputs(inputs, arch: Arch, state_dict) -> Inputs:
    if inputs is None:
        return (Inputs.untrained() if state_dict is None else
                Inputs.unknown("unknown: no input description was given with the weights"))
    if not isinstance(inputs, Inputs):
        raise MbnasError(f"inputs: expected an mbnas.export.Inputs, got "
                         f"{type(inputs).__name__}")
    if inputs.size is not None and inputs.size != arch.resolution:
        raise MbnasError(f"inputs: the weights were trained on {inputs.size} px images but "
                         f"the network is at {arch.resolution} px; export the network as "
                         "trained (its proxy spec)")
    if inputs.classes is not None and len(inputs.classes) != arch.num_classes:
        raise MbnasError(f"inputs: {len(inputs.classes)} class names for a network with "
                         f"{arch.num_classes} outputs")
    return inputs


