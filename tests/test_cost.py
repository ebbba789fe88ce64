"""The analytic counter against the papers' published figures and exact integers."""

import math

import pytest

from mbnas.arch.cost import count, layer_costs
from mbnas.arch.seeds import parse_arch


def _paper_round(value: float, decimals: int = 0) -> set[float]:
    """The papers round some figures to nearest and truncate others (V2 always truncates:
    300.8M is printed 300, 3.47M weights 3.4M); accept either, nothing else."""
    scale = 10**decimals
    return {round(value * scale) / scale, math.floor(value * scale) / scale}


# Howard et al. 2017, Table 6 (width, 224) and Table 7 (1.0, resolution):
# (width, resolution, million mult-adds, million weights)
V1_PAPER = [
    (1.0, 224, 569, 4.2), (0.75, 224, 325, 2.6), (0.5, 224, 149, 1.3), (0.25, 224, 41, 0.5),
    (1.0, 192, 418, 4.2), (1.0, 160, 290, 4.2), (1.0, 128, 186, 4.2),
]

# Sandler et al. 2018 (300M / 3.4M) and the authors' tf-slim checkpoint table, which
# prints every width x resolution (MACs truncated to whole millions, params to 0.01M).
V2_PUBLISHED = {
    (1.4, 224): (582, 6.06), (1.3, 224): (509, 5.34),
    (1.0, 224): (300, 3.47), (1.0, 192): (221, 3.47), (1.0, 160): (154, 3.47),
    (1.0, 128): (99, 3.47), (1.0, 96): (56, 3.47),
    (0.75, 224): (209, 2.61), (0.75, 192): (153, 2.61), (0.75, 160): (107, 2.61),
    (0.75, 128): (69, 2.61), (0.75, 96): (39, 2.61),
    (0.5, 224): (97, 1.95), (0.5, 192): (71, 1.95), (0.5, 160): (50, 1.95),
    (0.5, 128): (32, 1.95), (0.5, 96): (18, 1.95),
    (0.35, 224): (59, 1.66), (0.35, 192): (43, 1.66), (0.35, 160): (30, 1.66),
    (0.35, 128): (20, 1.66), (0.35, 96): (11, 1.66),
}

# Exact integers under the convention (MACs, PyTorch params, weights), pinned so that a
# change to rounding or counting shows up as a diff, not as a silent shift.
EXACT = {
    ("mobilenet_v1", 1.0, 224): (568_740_352, 4_231_976, 4_209_088),
    ("mobilenet_v1", 0.75, 224): (325_400_448, 2_585_560, 2_568_144),
    ("mobilenet_v1", 0.5, 224): (149_497_088, 1_331_592, 1_319_648),
    ("mobilenet_v1", 0.25, 224): (41_030_272, 470_072, 463_600),
    ("mobilenet_v1", 1.0, 160): (290_675_200, 4_231_976, 4_209_088),
    # torchvision's mobilenet_v2 reports 3,504,872 parameters
    ("mobilenet_v2", 1.0, 224): (300_774_272, 3_504_872, 3_469_760),
    ("mobilenet_v2", 1.4, 224): (582_195_824, 6_108_776, 6_059_840),
    ("mobilenet_v2", 0.35, 224): (59_285_808, 1_677_128, 1_662_048),
}


@pytest.mark.parametrize(("width", "resolution", "mmacs", "mweights"), V1_PAPER)
def test_v1_matches_the_paper(width, resolution, mmacs, mweights):
    cost = count(parse_arch("mobilenet_v1", width=width, resolution=resolution))
    assert mmacs in _paper_round(cost.macs / 1e6)
    assert mweights in _paper_round(cost.weights / 1e6, 1)


@pytest.mark.parametrize(("key", "published"), sorted(V2_PUBLISHED.items()))
def test_v2_matches_the_published_grid(key, published):
    width, resolution = key
    cost = count(parse_arch("mobilenet_v2", width=width, resolution=resolution))
    assert math.floor(cost.macs / 1e6) == published[0]
    assert round(cost.weights / 1e6, 2) == published[1]


def test_v2_paper_headline():
    cost = count(parse_arch("mobilenet_v2"))
    assert math.floor(cost.macs / 1e6) == 300 and math.floor(cost.weights / 1e5) / 10 == 3.4
    assert cost.macs > 300_000_000  # 300.8M: just over a 300M budget


@pytest.mark.parametrize(("key", "exact"), sorted(EXACT.items()))
def test_exact_integers(key, exact):
    name, width, resolution = key
    cost = count(parse_arch(name, width=width, resolution=resolution))
    assert (cost.macs, cost.params, cost.weights) == exact


def test_parameters_do_not_depend_on_resolution():
    counts = {count(parse_arch("mobilenet_v2", resolution=r)).params for r in (96, 160, 224)}
    assert len(counts) == 1


def test_breakdown_sums_to_total_and_v1_pointwise_dominates():
    arch = parse_arch("mobilenet_v1")
    rows = layer_costs(arch)
    assert sum(r.cost.macs for r in rows) == count(arch).macs
    share = {kind: sum(r.cost.macs for r in rows if r.kind == kind) / count(arch).macs
             for kind in ("pointwise", "depthwise", "conv", "fc")}
    # Howard et al. 2017, Table 2: 1x1 conv 94.86%, depthwise 3.06%, FC 0.18%.  Its 1.19%
    # for the first conv does not match its own Table 1 (10.8M of 569M is 1.9%), and
    # its four shares add up to 99.29%, so that row is not checked.
    assert share["pointwise"] == pytest.approx(0.9486, abs=5e-4)
    assert share["depthwise"] == pytest.approx(0.0306, abs=5e-4)
    assert share["fc"] == pytest.approx(0.0018, abs=5e-4)
    assert share["conv"] == pytest.approx(10_838_016 / 568_740_352)
