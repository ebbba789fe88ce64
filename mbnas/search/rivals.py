"""The MobileNets a search must beat: V1, V2 and V3-Large, each scaled to the budget.

What a practitioner does without a search is take the MobileNet they trust and scale its
width multiplier until it fills the budget (issue 20).  So the rivals are the canonical
networks (their papers' own channel rounding) at the largest width whose MACs fit
(:func:`mbnas.arch.cost.widest_within`: any multiplier, in thousandths), at the search's
target resolution and classes.  The resolution is not scaled: it is the input the user
deploys at, and the budget is priced at it.

They are the seed candidates where the search space can express them, references
otherwise, and the rivals of the confirmation.  Torch-, Optuna- and Ray-free.
"""

from __future__ import annotations

from dataclasses import dataclass

from mbnas.arch.cost import count, widest_within
from mbnas.arch.seeds import seed, with_overrides
from mbnas.arch.spec import Arch

# One of each family; V3-Small is V3-Large's smaller sibling, not another design.
RIVALS = ("mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large")
# Below this no paper reports a MobileNet (V1's narrowest is 0.25, V2's 0.35) and most
# layers sit at their rounding floor: a budget that only such a network fits has no rival.
MIN_WIDTH = 0.25


@dataclass(frozen=True)
class Rival:
    """A canonical MobileNet scaled to a budget."""

    name: str  # the seed: "mobilenet_v2"
    arch: Arch

    @property
    def width(self) -> float:
        return self.arch.width

    @property
    def label(self) -> str:
        """``mobilenet_v2 x0.98``: what every table prints."""
        return f"{self.name} x{self.arch.width:g}"

    @property
    def macs(self) -> int:
        return count(self.arch).macs


def canonical(name: str, *, resolution: int | None, num_classes: int) -> Arch:
    """Seed ``name`` at width 1.0 at the search's resolution (None: the seed's) and classes."""
    return with_overrides(seed(name), resolution=resolution, num_classes=num_classes)


def scaled(budget, *, resolution: int | None, num_classes: int,
           names: tuple[str, ...] = RIVALS) -> tuple[list[Rival], dict[str, int]]:
    """The rivals at ``budget`` (MACs, or a :class:`mbnas.costs.Budget`: scaled by the
    same metrics as the search), and those that do not fit even at :data:`MIN_WIDTH`
    (name -> their MACs there)."""
    rivals, over = [], {}
    for name in names:
        base = canonical(name, resolution=resolution, num_classes=num_classes)
        fitted = widest_within(base, budget)
        if fitted is None or fitted.width < MIN_WIDTH:
            over[name] = count(with_overrides(base, width=MIN_WIDTH)).macs
        else:
            rivals.append(Rival(name, fitted))
    return rivals, over


def scaled_seeds(space, budget, *, resolution: int | None,
                 num_classes: int) -> list[tuple[str, Arch]]:
    """The seeds of ``space`` (a :class:`~mbnas.search.space.SearchSpace`) each at the
    largest width whose MACs fit ``budget``, at the search's resolution and classes: the
    networks a search enqueues first.  A seed that fits only below :data:`MIN_WIDTH` is
    left out."""
    from mbnas.arch.encoding import decode

    out = []
    for name, text in space.seeds:
        base = with_overrides(decode(text), resolution=resolution, num_classes=num_classes)
        fitted = widest_within(base, budget)
        if fitted is not None and fitted.width >= MIN_WIDTH:
            out.append((name, fitted))
    return out
