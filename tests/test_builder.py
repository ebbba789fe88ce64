"""The built module against the analytic counter: exactly equal, never approximately."""

import json
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from strategies import archs
from torch.utils.flop_counter import FlopCounterMode

from mbnas.arch.cost import count
from mbnas.arch.seeds import parse_arch
from mbnas.nn.network import build


def measured_macs(model: torch.nn.Module, resolution: int) -> int:
    """torch's own count of conv + matmul FLOPs, halved (one multiply-add = 2 FLOPs)."""
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, resolution, resolution))
    return counter.get_total_flops() // 2


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2"])
@pytest.mark.parametrize("width", [0.35, 1.0, 1.4])
def test_seeds_built_match_the_analytic_count(name, width):
    arch = parse_arch(name, width=width, resolution=224)
    model = build(arch)
    cost = count(arch)
    assert measured_macs(model, 224) == cost.macs
    assert n_params(model) == cost.params
    weights = sum(m.weight.numel() for m in model.modules()
                  if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
    assert weights == cost.weights


REFERENCE = json.loads((Path(__file__).parent / "data" / "torchvision_counts.json").read_text())


@pytest.mark.parametrize(("name", "width", "key"), [
    ("mobilenet_v3_large", 1.0, "mobilenet_v3_large"),
    ("mobilenet_v3_small", 1.0, "mobilenet_v3_small"),
    ("mobilenet_v3_large", 0.75, "mobilenet_v3_large_w0.75"),
    ("mobilenet_v3_small", 0.75, "mobilenet_v3_small_w0.75"),
    ("mobilenet_v2", 1.0, "mobilenet_v2"),
])
def test_v3_equals_the_reference_pytorch_implementation(name, width, key):
    """MACs and parameters of torchvision's MobileNetV3 (tests/data, measured by
    scripts/torchvision_counts.py), analytically and on the built module."""
    arch = parse_arch(name, width=width)
    cost = count(arch)
    reference = REFERENCE["models"][key]
    assert (cost.macs, cost.params) == (reference["macs"], reference["params"])
    model = build(arch)
    assert measured_macs(model, 224) == cost.macs
    assert n_params(model) == cost.params


def test_v3_blocks_read_like_the_paper():
    model = build(parse_arch("mobilenet_v3_large"))
    first, squeezed = model.features[1], model.features[4]
    assert isinstance(first.expand, torch.nn.Identity)  # exp 16 = input 16: no expansion
    assert squeezed.se.reduce.out_channels == 24 and squeezed.se.expand.out_channels == 72
    assert isinstance(squeezed.se.gate, torch.nn.Hardsigmoid)
    assert isinstance(model.features[0][2], torch.nn.Hardswish)
    assert model.hidden[0].out_features == 1280 and model.classifier.in_features == 1280


@settings(max_examples=120)
@given(archs())
def test_random_specs_built_match_the_analytic_count(arch):
    model = build(arch)
    cost = count(arch)
    assert measured_macs(model, arch.resolution) == cost.macs
    assert n_params(model) == cost.params


@pytest.mark.parametrize("resolution", [17, 32, 33, 96, 225])
def test_any_allowed_resolution_runs(resolution):
    model = build(parse_arch("mobilenet_v2", width=0.35, resolution=resolution, num_classes=10))
    model.eval()
    assert model(torch.zeros(2, 3, resolution, resolution)).shape == (2, 10)


def test_blocks_read_like_the_paper():
    model = build(parse_arch("mobilenet_v2"))
    first, second = model.features[1], model.features[2]
    assert isinstance(first.expand, torch.nn.Identity)  # t = 1: no expansion conv
    assert second.expand[0].out_channels == 96 and second.depthwise[0].groups == 96
    assert len(second.project) == 2  # linear bottleneck: conv + BN, no activation
    assert second.residual is False and model.features[3].residual is True
