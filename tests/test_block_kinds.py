"""Adding a block kind is one module and one registration (README, "Adding a block kind"):
this test registers a kind of its own and uses it everywhere a kind is used."""

import subprocess
import sys

import pytest
import torch
from test_builder import measured_macs, n_params
from torch import nn

from mbnas.arch.cost import count
from mbnas.arch.encoding import decode, encode
from mbnas.arch.kinds import Block, BlockKind, Conv, conv_out, register, unregister
from mbnas.arch.spec import Stage
from mbnas.errors import MbnasError
from mbnas.export import export, load
from mbnas.nn.layers import ConvBNAct
from mbnas.nn.network import build
from mbnas.search.space import parse_space


class FusedConv(nn.Module):
    """A full k x k conv + BN + activation, VGG-style: the smallest useful kind."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel: int, stride: int, activation: str
    ) -> None:
        super().__init__()
        self.conv = ConvBNAct(in_channels, out_channels, kernel, stride, 1, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class FusedKind(BlockKind):
    name = "fused"
    summary = "a full conv, for tests"
    module_args = ("in_channels", "out_channels", "kernel", "stride", "activation")

    def convs(self, block: Block) -> tuple[Conv, ...]:
        return (Conv(f"{block.name}.conv", block.in_channels, block.out_channels,
                     block.kernel, block.stride, 1, block.in_size),)

    def module_class(self) -> type:
        return FusedConv


TEXT = "net_w1.0_r32_n10_div8,stem_k3_s2_c8,fused_r2_k3_s2_c16_relu,ir_r1_k3_s1_e2_c16,head_c64"


@pytest.fixture
def fused():
    register(FusedKind())
    yield
    unregister("fused")


def test_a_registered_kind_is_encoded_priced_built_and_exported(fused, tmp_path):
    arch = decode(TEXT)
    assert encode(arch) == TEXT and arch.stages[0].block == "fused"
    cost = count(arch)
    # 8->16 at 16x16 then 8x8, then 16->16 at 8x8 (priced by the kind), by hand:
    fused_macs = 3 * 3 * 8 * 16 * 8 * 8 + 3 * 3 * 16 * 16 * 8 * 8
    assert fused_macs < cost.macs
    model = build(arch)
    assert measured_macs(model, 32) == cost.macs and n_params(model) == cost.params
    assert isinstance(model.features[1], FusedConv)

    export(arch, tmp_path, formats=("py", "pt"))
    text = (tmp_path / "model.py").read_text()
    assert "class FusedConv(nn.Module)" in text and 'if spec.kind == "fused"' in text
    exported = load(tmp_path)
    x = torch.randn(2, 3, 32, 32)
    model.load_state_dict(exported.state_dict())
    with torch.no_grad():
        assert torch.equal(exported(x), model.eval()(x))
    ruff = subprocess.run([sys.executable, "-m", "ruff", "check", "--isolated", "--no-cache",
                           "--select", "F", str(tmp_path / "model.py")],
                          capture_output=True, text=True)
    assert ruff.returncode == 0, ruff.stdout  # nothing undefined or unused in model.py

    space = parse_space({"output_stride": 4, "stages": [
        {"block": ["fused", "ds"], "channels": [8, 16], "stride": [2]}]})
    assert space.arch({"s1_block": "fused", "s1_channels": 16}).stages[0].block == "fused"


def test_kinds_refuse_what_they_do_not_take(fused):
    with pytest.raises(MbnasError, match="se: True is not allowed for a 'fused' block"):
        Stage(block="fused", channels=16, se=True)
    with pytest.raises(MbnasError, match="unknown token 'se'"):
        decode("stem_c8,fused_r1_k3_s1_se_c16")
    with pytest.raises(MbnasError, match="unknown token 'e6'"):
        decode("stem_c8,fused_r1_k3_s1_e6_c16")
    with pytest.raises(MbnasError, match="already registered"):
        register(type("Other", (FusedKind,), {})())


def test_an_unregistered_kind_is_named_with_those_there_are():
    with pytest.raises(MbnasError, match="unexpected item 'fused_r1_c16'"):
        decode("stem_c8,fused_r1_c16")
    with pytest.raises(MbnasError, match="block: 'fused' is not allowed; choose from ds, ir"):
        parse_space({"output_stride": 2, "stages": [{"block": ["fused"], "channels": [8],
                                                     "stride": [2]}]})
    assert conv_out(7, 2) == 4
