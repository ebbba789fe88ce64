"""Sizes nobody can build are refused up front, in one line, without allocating them
(issue 18): a too-wide network, a too-deep spec, a too-large proxy resolution."""

from __future__ import annotations

import pytest
from cli import assert_usage_error, run

from mbnas import resources
from mbnas.arch.seeds import parse_arch
from mbnas.errors import MbnasError

# 2.1T parameters, 8.5 TB as float32: more than any machine has, so these tests do not
# depend on the memory of the one running them.
TOO_WIDE = ["mobilenet_v2", "--width", "1000"]


def test_export_of_a_too_wide_network_is_refused_before_building(tmp_path):
    result = run("export", *TOO_WIDE, "--out", str(tmp_path / "out"), cwd=tmp_path,
                 timeout=120)
    assert_usage_error(result, "width 1000", "2126.05G parameters (8.5 TB as float32)",
                       "memory available", "use a smaller width")
    assert not (tmp_path / "out").exists()


def test_train_of_a_too_wide_network_is_refused_before_building(tmp_path):
    result = run("train", *TOO_WIDE, "--dataset", "synthetic", "--epochs", "1",
                 "--out", str(tmp_path / "out"), cwd=tmp_path, timeout=120)
    assert_usage_error(result, "width 1000", "parameters", "memory available")


def test_build_asks_the_memory_guard(monkeypatch):
    from mbnas.nn.network import build

    monkeypatch.setattr(resources, "available_memory", lambda: 10**6)
    with pytest.raises(MbnasError, match=r"3\.50M parameters \(14\.0 MB as float32\).* "
                                         r"1\.0 MB of memory available"):
        build(parse_arch("mobilenet_v2"))


def test_the_guard_names_parameters_bytes_and_memory(monkeypatch):
    monkeypatch.setattr(resources, "available_memory", lambda: 16 * 10**9)
    wide = parse_arch("mobilenet_v2", width=100)  # issue 18: about 21G parameters
    with pytest.raises(MbnasError) as err:
        resources.check_network_fits(wide)
    assert str(err.value).startswith(
        "the network at width 100, 224x224 has 21.38G parameters (85.5 GB as float32) and "
        "at least 2.7 GB of activations at batch 1: 88.2 GB in all, but this machine has "
        "16.0 GB of memory available")
    resources.check_network_fits(parse_arch("mobilenet_v2", width=10))  # 2.2 GB fits


def test_memory_available_is_known_here():
    available = resources.available_memory()
    assert available is not None and 10**8 < available < 10**14


def test_a_spec_of_too_many_blocks_is_refused_before_expanding():
    # resolve() would build 10^8 blocks and run out of memory.
    result = run("count", "ir_r100000000_c16", timeout=60)
    assert_usage_error(result, "repeats: 100000000 is not allowed", "at most 1000 blocks")


def test_a_too_large_proxy_resolution_is_refused_before_resizing(tmp_path):
    result = run("train", "mobilenet_v2", "--dataset", "synthetic", "--epochs", "1",
                 "--proxy-resolution", "100000", "--out", str(tmp_path / "out"),
                 cwd=tmp_path, timeout=120)
    # 2,500 images x 3 x 100000^2 bytes, and a float copy of the largest split: 267 TB.
    assert_usage_error(result, "proxy resolution 100000", "2,500 images", "267.0 TB",
                       "memory available", "use a smaller --proxy-resolution")
