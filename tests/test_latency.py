"""Latency tables (issue 21): built from whole blocks on this machine, resumable, priced
before anything trains, and refused in one line when missing, damaged or made otherwise.
Timings themselves are measured by bench/, never asserted here."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from cli import assert_usage_error, run

from mbnas.arch.encoding import encode
from mbnas.arch.seeds import parse_arch
from mbnas.costs import metric
from mbnas.errors import MbnasError
from mbnas.latency.build import build_table, rounds_path
from mbnas.latency.metric import parse_ms, use_table
from mbnas.latency.table import CALL, Calibration, keys, load_table

SMALL = parse_arch("mobilenet_v2", width=0.35, resolution=32, num_classes=10)
V3 = parse_arch("mobilenet_v3_small", width=0.35, resolution=32, num_classes=10)
QUICK = {"warmup": 1, "repeats": 3, "min_seconds": 0.0, "rounds": 5}


@pytest.fixture(scope="module")
def table_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("latency") / "table.json"
    build_table([SMALL], path, runtime="torch", threads=1, batch=1, resolution=32,
                method="context", log=lambda m: None, **QUICK)
    return path


def test_a_table_holds_every_block_of_the_network_and_predicts_their_sum(table_path):
    table = load_table(table_path)
    assert {k for _, k in keys(SMALL)} | {CALL} == set(table.entries)
    assert table.meta.runtime == "torch" and table.meta.threads == 1
    assert table.meta.resolution == 32 and table.meta.cpu
    rows = table.breakdown(SMALL)
    # Timed in context, a block's entry is its share of the network's runs: the network is
    # the call plus its blocks (uncalibrated: one network timed whole is too few).
    assert table.meta.method == "context" and table.calibration() == Calibration()
    assert table.predict(SMALL) == pytest.approx(
        sum(table.entries[k].q1_ms for _, k in keys(SMALL) + [("", CALL)]))
    # A new table predicts from the lower quartile of each part's rounds: the speed a
    # disturbance never makes faster.
    assert table.meta.statistic == "q1" and "lower quartile" in table.describe()
    assert len(rows) == len(keys(SMALL)) + 1
    # Blocks are keyed as the network resolves them: V2's repeated blocks share an entry.
    assert len(set(table.entries)) < len(keys(SMALL)) + 1


@pytest.mark.parametrize("runtime", ["torch", "onnxruntime"])
def test_a_block_timed_alone_pays_a_call_of_its_own(tmp_path, runtime):
    pytest.importorskip("onnxruntime")
    table = build_table([SMALL], tmp_path / "t.json", runtime=runtime, threads=1, batch=1,
                        resolution=32, log=lambda m: None, **QUICK)  # the default
    assert load_table(tmp_path / "t.json").meta.method == "isolated"
    call = table.ms(CALL)
    assert table.predict(SMALL) == pytest.approx(
        sum(table.ms(k) for _, k in keys(SMALL)) - len(keys(SMALL)) * call + call)
    with pytest.raises(MbnasError, match="measured with method='isolated', this build "
                                         "measures 'context'"):
        build_table([SMALL], tmp_path / "t.json", runtime=runtime, threads=1, batch=1,
                    resolution=32, method="context", log=lambda m: None, **QUICK)


def test_a_profiled_run_is_split_into_its_blocks_shares():
    from mbnas.latency.measure import ort_shares

    def node(name, ts, dur):
        return {"cat": "Node", "name": f"{name}_kernel_time", "ts": ts, "dur": dur}

    run = [{"cat": "Session", "name": "model_run", "ts": 100, "dur": 60},
           node("ReorderInput_token_1", 102, 2),  # before the first block: the call's
           node("/features/features.0/features.0.0/Conv", 104, 10),
           node("/features/features.1/expand/expand.0/Conv", 115, 8),
           node("ReorderOutput_token_2", 124, 3),  # inside block 1: block 1's
           node("/features/features.1/project/project.0/Conv", 128, 6),
           node("/pool/GlobalAveragePool", 140, 5), node("/classifier/Gemm", 146, 4)]
    later = [dict(e, ts=e["ts"] + 1000) for e in run]
    shares = ort_shares(later + run, blocks=2)  # in any order
    assert shares == [pytest.approx([0.011, 0.025, 0.010, 0.014])] * 2  # blocks, fc, call
    with pytest.raises(MbnasError, match="does not name every block"):
        ort_shares(run[:2] + run[5:], blocks=2)


def test_a_build_resumes_and_adds_only_what_is_missing(table_path, tmp_path):
    path = tmp_path / "t.json"
    path.write_bytes(table_path.read_bytes())
    before = load_table(path).entries
    lines = []
    build_table([SMALL, V3], path, runtime="torch", threads=1, batch=1, resolution=32,
                method="context", log=lines.append, **QUICK)
    after = load_table(path).entries
    assert all(after[k] == e for k, e in before.items())  # nothing measured again
    new = {k for _, k in keys(V3)} - set(before)
    assert set(after) == set(before) | new and new
    assert "1 network(s) to time whole" in lines[0]  # V3 only: SMALL was timed before
    with pytest.raises(MbnasError, match="measured with threads=1"):
        build_table([SMALL], path, runtime="torch", threads=2, batch=1, resolution=32,
                    method="context", log=lambda m: None, **QUICK)


def test_a_bigger_chunk_times_every_part_in_the_same_rounds_and_says_how_far_it_is(tmp_path):
    """``--chunk``: every part of the build in one set of interleaved rounds, which
    reports each round as it ends (a long chunk is silent otherwise); the same parts as
    a default build; too small a chunk is one line and writes nothing."""
    lines = []
    table = build_table([SMALL], tmp_path / "t.json", runtime="torch", threads=1, batch=1,
                        resolution=32, chunk=1000, log=lines.append, **QUICK)
    need = {k for _, k in keys(SMALL)} | {CALL}
    assert set(table.entries) == need
    rounds = [line for line in lines if line.startswith("  round ") and "part(s)" in line]
    assert [line.split(" of ")[0] for line in rounds] == [f"  round {r}/5" for r in range(1, 6)]
    assert f"of {len(need)} part(s);" in rounds[0] and "left in this chunk" in rounds[-1]
    assert any(line.startswith("  round 5/5 of 1 network(s)") for line in lines)
    assert sum(line.startswith(f"[{len(need)}/") for line in lines) == 1  # one chunk
    out = tmp_path / "small.json"
    assert_usage_error(run("latency", "build", "mobilenet_v2", "--chunk", "2", "--out",
                           str(out)), "--chunk", "at least 4")
    assert not out.exists()


def test_a_killed_build_goes_on_from_the_last_round_it_finished(tmp_path):
    """Ctrl-C in the middle of a chunk: the rounds it finished are kept beside the table
    (TABLE.rounds), the next build times only the rest, and every entry holds the calls of
    all its rounds, those of both processes.  Kept rounds of another chunk are set aside
    in one line."""
    out = tmp_path / "t.json"
    kept = rounds_path(out)

    def build(lines: list[str], stop_at: str = ""):
        def log(line: str) -> None:
            lines.append(line)
            if stop_at and line.startswith(stop_at):
                raise KeyboardInterrupt
        return build_table([SMALL], out, runtime="torch", threads=1, batch=1,
                           resolution=32, chunk=1000, log=log, **QUICK)

    with pytest.raises(KeyboardInterrupt):
        build([], "  round 3/5 of")
    assert kept.exists() and not out.exists()  # the parts' chunk is not in a table yet
    second: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        build(second, "  round 2/5 of 1 network(s)")
    assert any(line.startswith("resuming ") and " part(s) from round 4/5: the first 3 "
               in line for line in second)
    rounds = [line.split(" of ")[0] for line in second
              if line.startswith("  round ") and "part(s)" in line]
    assert rounds == ["  round 4/5", "  round 5/5"]  # only the rounds the first lacked
    assert out.exists() and kept.exists()  # the parts are in the table, a network is not
    third: list[str] = []
    table = build(third)
    assert any(line.startswith("resuming 1 network(s) from round 3/5") for line in third)
    assert not kept.exists()
    need = {k for _, k in keys(SMALL)} | {CALL}
    assert set(table.entries) == need and len(table.networks) == 1
    every = [*table.entries.values(), *table.networks.values()]
    assert all(e.runs == QUICK["rounds"] * QUICK["repeats"] for e in every)

    other = tmp_path / "u.json"
    rounds_path(other).write_text('{"format": 1, "kind": "part", "rounds": {}}\n')
    lines = []
    build_table([SMALL], other, runtime="torch", threads=1, batch=1, resolution=32,
                chunk=1000, log=lines.append, **QUICK)
    assert sum(line.startswith("  not resuming from") for line in lines) == 1
    assert not rounds_path(other).exists() and set(load_table(other).entries) == need


def test_an_onnx_runtime_table(tmp_path):
    pytest.importorskip("onnxruntime")
    path = tmp_path / "ort.json"
    table = build_table([SMALL], path, runtime="onnxruntime", threads=1, batch=1,
                        resolution=32, log=lambda m: None, **QUICK)
    assert table.meta.runtime == "onnxruntime" and table.predict(SMALL) > 0


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(_has_cuda(), reason="this machine has a CUDA device")
def test_a_cuda_table_without_a_gpu_is_one_line(tmp_path):
    out = tmp_path / "gpu.json"
    assert_usage_error(run("latency", "build", "mobilenet_v2", "--runtime", "cuda", "--out",
                           str(out)), "--runtime cuda", "no CUDA device", "onnxruntime")
    assert not out.exists()


@pytest.mark.skipif(not _has_cuda(), reason="needs a CUDA device")
def test_a_cuda_table(tmp_path):
    """On a GPU: each call synchronised, the GPU named, the table priced like the others;
    in-context timing (CPU clocks) refused."""
    table = build_table([SMALL], tmp_path / "gpu.json", runtime="cuda", threads=1, batch=1,
                        resolution=32, log=lambda m: None, **QUICK)
    loaded = load_table(tmp_path / "gpu.json")
    assert loaded.meta.runtime == "cuda" and "CUDA" in loaded.meta.runtime_version
    assert "host" in loaded.meta.cpu and table.predict(SMALL) > 0
    with pytest.raises(MbnasError, match="--method isolated"):
        build_table([SMALL], tmp_path / "ctx.json", runtime="cuda", threads=1, batch=1,
                    resolution=32, method="context", log=lambda m: None, **QUICK)


def test_a_canary_holds_every_figure_at_one_speed():
    """A reference network read around the parts: a round at a third of the machine's
    speed no longer reads as a slower part (the round medians of a part that sleeps 8 ms a
    call at speed 1, 24 ms at speed 1/3, alternating; in units of 4 ms, since a sleep here
    overshoots by up to 0.2 ms)."""
    import time

    from mbnas.latency.measure import CANARY_REPEATS, Canary, timed_rounds

    slowness, reads, unit = [1, 3, 1, 3, 1], [0], 0.004

    def now() -> int:  # each round reads the canary twice, each read 1 + repeats calls
        return slowness[min(reads[0] // (2 * (CANARY_REPEATS + 1)), len(slowness) - 1)]

    def canary_call():
        time.sleep(unit * now())
        reads[0] += 1

    def part():
        time.sleep(2 * unit * now())

    timing = {"rounds": 5, "warmup": 1, "repeats": 3}
    canary = Canary(canary_call)
    held = timed_rounds({"part": part}, canary=canary, **timing)["part"]
    assert canary.reference_ms == pytest.approx(4.0, rel=0.15)  # the median reading
    assert held.median_ms == pytest.approx(8.0, rel=0.15) and not held.noisy
    raw = canary.raw["part"]  # as timed: the slow rounds show
    assert raw.q3_ms == pytest.approx(24.0, rel=0.15) and raw.noisy
    reads[0] = 0
    twice = Canary(canary_call, reference_ms=8.0)  # a table's reference, kept
    assert timed_rounds({"part": part}, canary=twice, **timing)["part"].median_ms == \
        pytest.approx(16.0, rel=0.15)
    assert twice.reference_ms == 8.0


def test_a_table_built_with_a_canary_keeps_its_reference(tmp_path):
    path = tmp_path / "held.json"
    build_table([SMALL], path, runtime="torch", threads=1, batch=1, resolution=32,
                canary=True, log=lambda m: None, **QUICK)
    meta = load_table(path).meta
    assert meta.canary == encode(parse_arch("mobilenet_v2", resolution=32)) and \
        meta.canary_ms > 0
    assert "held at the speed a reference network ran at" in load_table(path).describe()
    build_table([SMALL, V3], path, runtime="torch", threads=1, batch=1, resolution=32,
                canary=True, log=lambda m: None, **QUICK)
    assert load_table(path).meta.canary_ms == meta.canary_ms  # resumed at the same speed
    with pytest.raises(MbnasError, match="built with a reference network .--canary., "
                                         "this build without one"):
        build_table([SMALL], path, runtime="torch", threads=1, batch=1, resolution=32,
                    log=lambda m: None, **QUICK)
    data = json.loads(path.read_text())
    data["meta"]["canary_ms"] = 0
    path.write_text(json.dumps(data))
    with pytest.raises(MbnasError, match="damaged: meta.canary"):
        load_table(path)


def test_the_fit_predicts_blocks_it_never_saw_from_those_it_holds():
    """Blocks of the default space costed by a known roofline (every term, plus 3% noise):
    fitted to half of them, the fit predicts the other half within a few per cent, and a
    block needing a term no measured block had is refused by name."""
    import random

    from mbnas.latency.build import space_members
    from mbnas.latency.fit import features, fit
    from mbnas.search.space import resolve_space

    rng = random.Random(0)
    cost = {}  # ms per unit of each term: of the magnitude measured on this machine
    blocks = sorted({k for a in space_members(resolve_space(None), 30, seed=3, resolution=224,
                                              num_classes=1000) for _, k in keys(a)})
    truth = {}
    for k in blocks:
        row = features(k)
        for name in row:
            cost.setdefault(name, 1e-4 if name.startswith("ops") else 10 ** rng.uniform(-8, -7))
        truth[k] = sum(v * cost[n] for n, v in row.items()) * rng.uniform(0.97, 1.03)
    rng.shuffle(blocks)
    held, unseen = blocks[: len(blocks) // 2], blocks[len(blocks) // 2:]
    model = fit({k: truth[k] for k in held})
    assert model is not None and model.median_error < 0.03
    errors = sorted(abs(model.predict(k) / truth[k] - 1) for k in unseen)
    assert errors[len(errors) // 2] < 0.05 and errors[int(0.9 * len(errors))] < 0.10
    # A table of blocks without squeeze-and-excitation cannot price one that has it.
    plain = {k: truth[k] for k in held if ":se0:" in k}
    with_se = next(k for k in unseen if ":se0:" not in k)
    assert fit(plain).predict(with_se) is None and "se_elements" in fit(plain).lacking(with_se)


def test_channels_off_the_runtimes_blocking_are_a_term_of_their_own():
    """A pointwise or depthwise convolution whose input channels are not a multiple of 4
    (MobileNetV1's truncated widths) is priced by terms of its own, which ONNX Runtime
    needs (1.7x per multiply-add here); a table that measured none prices it as
    aligned rather than refusing it."""
    from mbnas.latency.fit import features, fit

    odd, even = "ds:45-45-91:k3:s1:relu:nores:se0:56", "ds:44-44-92:k3:s1:relu:nores:se0:56"
    assert features(odd)["macs_unaligned"] > 0 and features(odd)["elements_unaligned"] > 0
    assert features(even)["macs_unaligned"] == features(even)["elements_unaligned"] == 0
    stem = "conv:3-16-16:k3:s2:hswish:nores:se0:224"  # 3 input channels: a full conv
    assert features(stem)["macs_unaligned"] == 0
    aligned = {f"ds:{c}-{c}-{2 * c}:k3:s1:relu:nores:se0:{size}": 1e-8 * c * c * size * size
               for c in (16, 24, 32, 40, 48, 64, 96, 128) for size in (14, 28, 56)}
    model = fit(aligned)
    assert model.predict(odd) == pytest.approx(model.predict(even), rel=0.1)
    unaligned = {**aligned, **{f"ds:{c}-{c}-{2 * c}:k3:s1:relu:nores:se0:{size}":
                               1.7e-8 * c * c * size * size
                               for c in (23, 45, 91) for size in (14, 56)}}
    assert fit(unaligned).predict(odd) > 1.4 * fit(unaligned).predict(even)


def test_the_fit_reads_the_runtimes_channel_padding_off_the_table():
    """A blocked kernel pads channels to its vector width (16 floats on this machine's
    AVX-512, in ONNX Runtime): 8 channels cost what 16 do.  Blocks of the default space
    costed by a roofline of padded channels (3% noise): the fit pads to 16, and predicts
    the unseen half within a few per cent; costed unpadded, it pads nothing.  A
    convolution off the blocked kernels (45 channels) is not padded."""
    import random

    from mbnas.latency.build import space_members
    from mbnas.latency.fit import features, fit
    from mbnas.search.space import resolve_space

    eight, sixteen = "ds:8-8-8:k3:s1:relu:nores:se0:112", "ds:16-16-16:k3:s1:relu:nores:se0:112"
    assert features(eight, channel_block=16)["macs_pointwise"] == \
        features(sixteen)["macs_pointwise"] > features(eight)["macs_pointwise"]
    odd = "ds:45-45-91:k3:s1:relu:nores:se0:56"
    assert features(odd, channel_block=16) == features(odd)
    rng = random.Random(1)
    blocks = sorted({k for a in space_members(resolve_space(None), 30, seed=3, resolution=224,
                                              num_classes=1000) for _, k in keys(a)})
    cost = {n: 1e-4 if n.startswith("ops") else 10 ** rng.uniform(-8, -7)
            for k in blocks for n in features(k, True)}
    noise = {k: rng.uniform(0.97, 1.03) for k in blocks}
    rng.shuffle(blocks)
    held, unseen = blocks[: len(blocks) // 2], blocks[len(blocks) // 2:]
    for block in (16, 1):
        truth = {k: noise[k] * sum(v * cost[n] for n, v in
                                   features(k, True, channel_block=block).items())
                 for k in blocks}
        model = fit({k: truth[k] for k in held}, blocked=True)
        assert model.channel_block == block
        errors = sorted(abs(model.predict(k) / truth[k] - 1) for k in unseen)
        assert errors[len(errors) // 2] < 0.05


def test_a_blocked_layouts_model_prices_a_blocks_input_by_what_reads_it():
    """ONNX Runtime converts a block's input into its blocked layout, at a cost that
    depends on the convolution reading it: its model has the input by the kind of the
    first convolution, and the maps of 112 px apart; eager's model has neither.  Fitted
    to blocks whose depthwise-first kind costs more per input element, the blocked model
    prices an unseen one of them closer than the plain model does."""
    from mbnas.latency.fit import features, fit

    ds = "ds:32-32-64:k3:s1:relu:nores:se0:112"
    blocked, plain = features(ds, blocked=True), features(ds)
    assert blocked["input_depthwise_huge"] == 32 * 112 * 112
    assert blocked["elements_depthwise_huge"] > 0 and blocked["elements_depthwise_large"] == 0
    assert not any(v for k, v in plain.items() if k.startswith("input_") or "_huge" in k)
    assert plain["elements_depthwise_large"] > 0

    def truth(key):  # a roofline, plus 1 ns per input element read by a depthwise first
        row = features(key)
        extra = 1e-6 * features(key, blocked=True)["input_depthwise_huge"]
        return 1e-6 * sum(v for k, v in row.items() if k.startswith("elements_")) + extra

    blocks = [f"{kind}:{c}-{c * e}-{c}:k3:s1:relu6:nores:se0:{size}"
              for kind, e in (("ds", 1), ("ir", 6))
              for c in (16, 24, 32, 40, 48, 56, 64, 72, 80, 96) for size in (14, 28, 56, 112)]
    held = {k: truth(k) for k in blocks if ":40-" not in k}
    unseen = "ds:40-40-40:k3:s1:relu6:nores:se0:112"

    def error(model):
        return abs(model.predict(unseen) / truth(unseen) - 1)

    assert error(fit(held, blocked=True)) < 0.5 * error(fit(held))


def _synthetic_table(archs):
    """A table holding every part of ``archs``, each at 10-12 us, and no network yet
    (timed in context, so that no part's entry holds a call to take off)."""
    import random

    from mbnas.latency.table import Entry, Meta, Table

    rng = random.Random(0)
    entries = {}
    for arch in archs:
        for _, key in keys(arch):
            ms = rng.uniform(0.010, 0.012)
            entries.setdefault(key, Entry(ms, ms, ms, 20))
    entries[CALL] = Entry(0.002, 0.002, 0.002, 20)
    meta = Meta(runtime="torch", runtime_version="test", threads=1, batch=1,
                resolution=32, cpu="test", method="context", statistic="q1")
    return Table(meta, entries, fill=False)


def _raw(table, arch):
    """``arch``'s sum of parts, with its edges (input elements, weights)."""
    from mbnas.latency.fit import edges

    parts = [k for _, k in keys(arch)] + [CALL]
    return (sum(table.entries[k].q1_ms for k in parts),
            sum(edges(k)[0] for k in parts), sum(edges(k)[1] for k in parts))


def test_below_the_networks_it_was_calibrated_on_a_prediction_stays_in_proportion():
    """Calibrated on networks whose end-to-end time is 1.5x their sum of parts less a
    fixed 0.3x of the smallest sum (a negative offset), a table predicts those networks
    on the line, and a smaller network in proportion to the line's value at the smallest
    one (1.2x its sum), not by extrapolating the offset towards zero and below."""
    from mbnas.latency.table import Entry

    calibrated = [parse_arch("mobilenet_v2", width=w, resolution=32, num_classes=10)
                  for w in (0.5, 0.75, 1.0, 1.4)]
    table = _synthetic_table([*calibrated, V3])
    floor = min(_raw(table, a)[0] for a in calibrated)
    for arch in calibrated:
        ms = 1.5 * _raw(table, arch)[0] - 0.3 * floor
        table.networks[encode(arch)] = Entry(ms, ms, ms, 20)
    c = table.calibration()  # 4 networks: a scale and an offset only
    assert (c.scale, c.offset) == pytest.approx((1.5, -0.3 * floor))
    assert c.per_element == c.per_weight == 0
    for arch in calibrated:
        assert table.predict(arch) == pytest.approx(1.5 * _raw(table, arch)[0] - 0.3 * floor)
    raw = _raw(table, V3)[0]
    assert raw < floor  # the case under test: below every calibrated network
    assert table.predict(V3) == pytest.approx(1.2 * raw)
    assert sum(p.ms for p in table.breakdown(V3)) == pytest.approx(table.predict(V3))


def test_with_enough_networks_the_calibration_weighs_each_parts_edges():
    """Networks timed end to end at 0.9x their sum of parts, less 2 ms per million input
    elements of their parts (the layout conversions a part timed alone pays), plus 5 ms
    per million weights (cold in a whole network), plus 0.05 ms a call: the calibration
    finds each term, and predicts a network it was not fitted on by the same law, part
    by part."""
    from mbnas.latency.table import CALIBRATION_NETWORKS, Entry

    law = (0.9, -2e-6, 5e-6, 0.05)  # scale, per element, per weight, offset

    def timed(arch):
        raw, elements, weights = _raw(table, arch)
        return law[0] * raw + law[1] * elements + law[2] * weights + law[3]

    fitted = [parse_arch(name, width=w, resolution=32, num_classes=10)
              for name in ("mobilenet_v2", "mobilenet_v3_large", "mobilenet_v1")
              for w in (0.5, 0.75, 1.0)]
    unseen = parse_arch("mobilenet_v2", width=1.3, resolution=32, num_classes=10)
    table = _synthetic_table([*fitted, unseen])
    assert len(fitted) >= CALIBRATION_NETWORKS
    for arch in fitted:
        table.networks[encode(arch)] = Entry(*[timed(arch)] * 3, 20)
    c = table.calibration()
    assert (c.scale, c.per_element, c.per_weight, c.offset) == pytest.approx(law, rel=1e-6)
    assert table.predict(unseen) == pytest.approx(timed(unseen), rel=1e-6)
    assert sum(p.ms for p in table.breakdown(unseen)) == pytest.approx(timed(unseen))
    assert "ms per million weights" in c.describe()


def test_a_network_the_table_lacks_is_one_line(table_path):
    with pytest.raises(MbnasError, match="has no entry for 12 part.* `mbnas latency build"):
        load_table(table_path).predict(V3)
    big = parse_arch("mobilenet_v2", width=0.35, num_classes=10)  # 224 px
    with pytest.raises(MbnasError, match="measured at 32x32"):
        load_table(table_path).predict(big)


@pytest.mark.parametrize(("content", "needle"), [
    (None, "does not exist"),
    (b"{oops", "cannot be read"),
    (b"[]", "not a format-1"),
    (b'{"format": 1, "meta": {"runtime": "tflite"}}', "damaged"),
])
def test_a_missing_or_damaged_table_is_one_line(tmp_path, table_path, content, needle):
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(MbnasError, match=needle):
        load_table(path)
    text = encode(SMALL)
    result = run("count", text, "--latency-table", str(path))
    assert_usage_error(result, str(path), needle)


def test_a_table_of_another_runtime_or_resolution_is_refused(table_path):
    with pytest.raises(MbnasError, match="measured with torch, this command asks for "
                                         "onnxruntime"):
        use_table(table_path, runtime="onnxruntime")
    with pytest.raises(MbnasError, match="measured at 32 px, this command prices networks "
                                         "at 224 px"):
        use_table(table_path, resolution=224)
    use_table(table_path, runtime="torch", resolution=32)
    assert metric("latency").price(SMALL) == load_table(table_path).predict(SMALL)


def test_count_prices_latency_from_a_table(table_path):
    result = run("count", encode(SMALL), "--latency-table", str(table_path), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["latency_ms"] == pytest.approx(load_table(table_path).predict(SMALL), abs=1e-4)
    shown = run("count", encode(SMALL), "--latency-table", str(table_path))
    assert shown.returncode == 0 and "ms predicted" in shown.stdout
    assert "stage2" in shown.stdout and "per-call cost" in shown.stdout
    # One network timed end to end: too few for the table to say how close it comes.
    assert "too few to say" in shown.stdout and data["latency_holdout"] is None


def test_times_are_read_in_any_unit():
    assert parse_ms("15ms") == 15 and parse_ms("0.015s") == 15 and parse_ms("1500us") == 1.5
    with pytest.raises(MbnasError, match="not a positive time"):
        parse_ms("fast")


def test_latency_build_needs_something_to_measure():
    assert_usage_error(run("latency", "build", "--out", "x.json"), "give architectures")


TINY = str(Path(__file__).parent / "spaces" / "tiny.yaml")


@pytest.mark.slow
def test_a_latency_budgeted_search_end_to_end(tmp_path):
    """Real Ray, real Optuna: a table built for the tiny space, a search under a latency
    budget (beside its MAC budget) on the generated data set.  No trained candidate's
    predicted latency is over the budget; the winner is measured once, beside its
    prediction."""
    from mbnas.arch.encoding import decode
    from mbnas.latency.build import space_members
    from mbnas.search.space import load_space

    path = tmp_path / "tiny.json"
    built = run("latency", "build", "--space", TINY, "--sample", "20", "--runtime", "torch",
                "--warmup", "1", "--repeats", "3", "--rounds", "2", "--num-classes", "10",
                "--out", str(path))
    assert built.returncode == 0, built.stderr[-2000:]
    assert "entries (torch" in built.stdout and "left" in built.stderr  # progress shown
    table = load_table(path)
    assert table.model() is not None  # enough blocks to predict the ones it lacks
    # A table for a search also holds convolutions off ONNX Runtime's channel blocking,
    # which price the V1 rival (MobileNetV1 x0.718's truncated channels).
    assert "also timing mobilenet_v1 x0.718" in built.stderr
    assert "macs_unaligned" in table.model().terms
    others = space_members(load_space(TINY), 40, seed=99, resolution=224, num_classes=10)
    latencies = sorted(table.predict(a) for a in others)  # members it never measured
    budget = latencies[len(latencies) // 2]  # about half the space fits
    result = run("search", "--budget", "6M", "--budget", f"{budget:.4f}ms", "--space", TINY,
                 "--dataset", "synthetic", "--epochs", "2", "--lr", "0.2", "--batch-size",
                 "32", "--trials", "5", "--runs-dir", str(tmp_path), "--name", "lat",
                 "--threads", "1", "--cpus-per-trial", "1", "--no-confirm", "--references",
                 "none", "--latency-table", str(path), "--latency-runtime", "torch",
                 "--num-classes", "10")
    assert result.returncode == 0, result.stderr[-3000:]
    # Progress names the best so far by what the budget counts.
    assert re.search(r"best [\d.]+% at [\d.]+M MACs and [\d.]+ ms", result.stderr)
    with (tmp_path / "lat" / "trials.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    trained = [r for r in rows if r["state"] == "complete"]
    assert trained and all(r["latency_ms"] for r in trained)
    for r in trained:  # priced before training, and the price is the table's
        predicted = table.predict(decode(r["arch"]))
        assert float(r["latency_ms"]) == pytest.approx(predicted, abs=1e-3)
        assert predicted <= budget + 1e-9
    best = json.loads((tmp_path / "lat" / "best.json").read_text())
    w = best["winner_latency"]
    assert w["measured_ms"] > 0 and w["predicted_ms"] <= budget + 1e-9
    assert f"{w['predicted_ms']:.2f} ms predicted, {w['measured_ms']:.2f}" in result.stdout
    # Beside the prediction, how close the table comes to networks it never saw.
    assert w["holdout"]["networks"] == table.holdout().networks
    assert (f"the table predicts its {w['holdout']['networks']} networks, each held out, to a "
            f"median {100 * w['holdout']['median_error']:.1f}%") in result.stdout
    assert best["budgets"]["latency"] == pytest.approx(budget, abs=1e-3)
    assert best["budgets"]["macs"] == 6_000_000
    # mbnas show names the latency limit in ms and plots accuracy against latency too.
    shown = run("show", str(tmp_path / "lat"))
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert f"budget 6.0M MACs and {best['budgets']['latency']:.2f} ms" in shown.stdout
    assert "winner's latency" in shown.stdout and "each held out, to a median" in shown.stdout
    assert (tmp_path / "lat" / "accuracy_vs_latency.png").stat().st_size > 0


def test_a_winner_is_not_measured_on_a_device_other_than_the_tables(tiny_table, tmp_path,
                                                                     monkeypatch):
    """A table built on the user's device and searched with on a bigger machine: timing
    the winner there would set a figure from another CPU beside the device's prediction.
    None is taken, and the record says why and how to time it on the device."""
    import subprocess
    from dataclasses import replace

    from mbnas.latency.measure import device_model
    from mbnas.search.run import measure_network

    table = load_table(tiny_table)
    table.meta = replace(table.meta, cpu="Raspberry Pi 5 (Cortex-A76)")
    path = table.save(tmp_path / "pi.json")
    arch = next(iter(table.networks))

    def no_timing(*args, **kwargs):
        raise AssertionError("timed the winner on a machine that is not the table's device")

    monkeypatch.setattr(subprocess, "run", no_timing)
    got = measure_network(path, arch)
    assert got["measured_ms"] is None
    assert got["predicted_ms"] == pytest.approx(table.predict(parse_arch(arch)), abs=1e-4)
    assert device_model("torch") in got["not_measured"]
    assert "Raspberry Pi 5" in got["not_measured"]
    assert "python -m mbnas.latency ARCH torch 1 1" in got["not_measured"]


@pytest.fixture(scope="module")
def tiny_table(tmp_path_factory):
    """A torch table of the tiny space at 224 px, the resolution a search prices at."""
    from mbnas.latency.build import space_members
    from mbnas.search.space import load_space

    path = tmp_path_factory.mktemp("tiny-table") / "tiny.json"
    build_table(space_members(load_space(TINY), 20, seed=0, resolution=224, num_classes=10),
                path, runtime="torch", threads=1, batch=1, resolution=224,
                log=lambda m: None, **QUICK)
    return path


def test_a_table_says_how_close_it_comes_to_networks_it_never_saw(tiny_table, tmp_path):
    """Each network the build timed end to end is predicted as an unseen one would be,
    and the table keeps the figures; a network timed 3x slower than its blocks add up to
    is the one named furthest off, and a table that has grown computes them again."""
    from mbnas.latency.table import Entry, Table

    table = load_table(tiny_table)
    stored = json.loads(Path(tiny_table).read_text())["holdout"]  # kept by the build
    h = table.holdout()
    assert h.to_json() == stored and h.networks == len(table.networks) >= 10
    assert 0 <= h.median_error and 0 <= h.within_10 <= 1 and abs(h.median_signed) <= h.median_error
    assert abs(h.worst_error) >= h.median_error

    slow = next(t for t in table.networks if t != h.worst)
    networks = dict(table.networks)
    networks[slow] = Entry(*(3 * v for v in (networks[slow].median_ms, networks[slow].q1_ms,
                                             networks[slow].q3_ms)), networks[slow].runs)
    off = Table(table.meta, table.entries, networks=networks).holdout()
    assert off.worst == slow and off.worst_error < -0.5  # predicted at a third of it or so
    # Its figure is what a table that never timed it would predict: without it among the
    # networks that calibrate, and without the blocks only it has.
    from mbnas.arch.encoding import decode

    others = {k for t in networks if t != slow for _, k in keys(decode(t))}
    unseen = Table(table.meta, {k: e for k, e in table.entries.items()
                                if k in others or k not in {k for _, k in keys(decode(slow))}},
                   networks={t: e for t, e in networks.items() if t != slow})
    assert len(unseen.entries) < len(table.entries)  # it had blocks of its own
    assert off.worst_error == pytest.approx(
        unseen.predict(decode(slow)) / networks[slow].q1_ms - 1, rel=1e-9)

    grown = load_table(tiny_table)
    grown.networks[encode(SMALL)] = Entry(1.0, 1.0, 1.0, 20)  # another network timed
    assert grown.holdout().timed == len(table.networks) + 1
    saved = grown.save(tmp_path / "grown.json")
    assert json.loads(saved.read_text())["holdout"]["timed"] == len(table.networks) + 1

    damaged = json.loads(Path(tiny_table).read_text())
    damaged["holdout"] = {"networks": "many"}  # a bad figure is recomputed, not trusted
    (tmp_path / "damaged.json").write_text(json.dumps(damaged))
    again = load_table(tmp_path / "damaged.json").holdout()
    assert (again.networks, again.worst) == (h.networks, h.worst)
    assert again.median_error == pytest.approx(h.median_error, rel=1e-9)

    shown = run("count", next(iter(table.networks)), "--latency-table", str(tiny_table),
                "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["latency_holdout"] == {
        "networks": h.networks, "median_error": round(h.median_error, 4),
        "within_10": round(h.within_10, 4), "median_signed_error": round(h.median_signed, 4)}
    text = run("count", next(iter(table.networks)), "--latency-table",
               str(tiny_table)).stdout
    assert f"came out a median {100 * h.median_error:.1f}% from their measured times" in text


def test_a_recalibration_times_the_networks_again_and_keeps_the_blocks(tiny_table, tmp_path):
    """A table whose networks were timed while the machine ran 3x slower predicts 3x
    too slow; ``--recalibrate`` times them all again and refits the calibration to them,
    its blocks untouched, its self-check redone on the new timings."""
    from mbnas.arch.encoding import decode
    from mbnas.latency.table import Entry, Table

    table = load_table(tiny_table)
    slow = {t: Entry(*(3 * v for v in (e.median_ms, e.q1_ms, e.q3_ms)), e.runs)
            for t, e in table.networks.items()}
    path = tmp_path / "slow.json"
    Table(table.meta, table.entries, networks=slow).save(path)
    before = load_table(path)
    archs = [decode(t) for t in before.networks]
    result = run("latency", "build", "--recalibrate", "--out", str(path))
    assert result.returncode == 0, result.stderr
    assert (f"recalibrating: timing the table's {len(before.networks)} network(s) end to "
            "end again") in result.stderr
    assert re.search(r"recalibrated in .*: the networks ran a median -[0-9.]+% against "
                     r"their last timing( \([0-9]+ NOISY[^)]*\))?; calibration x",
                     result.stderr)
    after = load_table(path)
    assert after.entries == before.entries and set(after.networks) == set(before.networks)
    assert all(after.networks[t] != e for t, e in before.networks.items())  # timed again
    assert after.meta.recalibrated and not before.meta.recalibrated
    ratio = sorted(after.predict(a) / before.predict(a) for a in archs)[len(archs) // 2]
    assert ratio < 0.6  # the 3x is gone (a third, give or take the machine's noise)
    stored = json.loads(path.read_text())["holdout"]  # the self-check, on the new timings
    fresh = Table(after.meta, after.entries, networks=after.networks).holdout()
    assert stored == fresh.to_json()

    # Nothing to recalibrate: one line, and the file is left as it was.
    missing = tmp_path / "missing.json"
    assert_usage_error(run("latency", "build", "--recalibrate", "--out", str(missing)),
                       "--recalibrate", "does not exist", "build it first")
    assert not missing.exists()
    bare = tmp_path / "bare.json"
    Table(table.meta, table.entries).save(bare)
    saved = bare.read_bytes()
    assert_usage_error(run("latency", "build", "--recalibrate", "--out", str(bare)),
                       "--recalibrate", "timed no network end to end")
    assert bare.read_bytes() == saved


@pytest.mark.slow
@pytest.mark.parametrize(("args", "needles"), [
    (["--budget", "5ms"], ["latency budget", "needs --latency-table"]),
    (["--budget", "5ms", "--latency-table", "{missing}"], ["{missing}", "does not exist"]),
    (["--budget", "5ms", "--latency-table", "{corrupt}"], ["{corrupt}", "cannot be read"]),
    (["--budget", "5ms", "--latency-table", "{table}"],  # the default runtime is onnxruntime
     ["measured with torch, this command asks for onnxruntime"]),
    (["--budget", "5ms", "--latency-table", "{table}", "--latency-runtime", "torch",
      "--resolution", "160"], ["measured at 224 px", "prices networks at 160 px"]),
    (["--budget", "latency=6M", "--latency-table", "{table}", "--latency-runtime", "torch"],
     ["--budget", "not a positive time", "15ms"]),  # a budget in the wrong unit
    (["--budget", "0.0001ms", "--latency-table", "{table}", "--latency-runtime", "torch"],
     ["below the cheapest member"]),
])
def test_bad_latency_input_leaves_the_run_folder_as_it_was(finished_run, tiny_table, tmp_path,
                                                           args, needles):
    from cli import snapshot

    (tmp_path / "corrupt.json").write_text("{oops")
    paths = {"{table}": str(tiny_table), "{missing}": str(tmp_path / "missing.json"),
             "{corrupt}": str(tmp_path / "corrupt.json")}
    args = [paths.get(a, a) for a in args]
    needles = [paths.get(n, n) for n in needles]
    runs = finished_run.parent
    before = snapshot(runs.parent)
    result = run("search", "--space", TINY, "--runs-dir", str(runs), "--name", "search-6M",
                 "--dataset", "synthetic", *args)
    assert_usage_error(result, *needles)
    assert snapshot(runs.parent) == before  # no file changed, no folder added


def test_the_winners_timer_refuses_bad_arguments_in_one_line():
    import subprocess
    import sys

    for args in ([], ["bogus", "torch", "1", "1"], [encode(SMALL), "tflite", "1", "1"],
                 [encode(SMALL), "torch", "1", "1", "0", "5", "0.01"],  # no rounds
                 [encode(SMALL), "torch", "1", "1", "20", "5"]):  # half a protocol
        done = subprocess.run([sys.executable, "-m", "mbnas.latency", *args],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "Traceback" not in done.stderr


def test_the_winners_timer_times_by_the_protocol_it_is_given():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "mbnas.latency", encode(SMALL), "torch", "1",
                           "1", "3", "2", "0"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    entry = json.loads(done.stdout.strip().splitlines()[-1])
    assert entry["runs"] == 3 * 2  # 3 rounds of 2 timed calls, no time floor
    assert 0 < entry["q1_ms"] <= entry["median_ms"] <= entry["q3_ms"]


def test_a_table_records_its_protocol_and_grows_only_by_it(tmp_path):
    from mbnas.latency.table import ROUNDS

    path, lines = tmp_path / "t.json", []
    quick = {"runtime": "torch", "threads": 1, "batch": 1, "resolution": 32, "warmup": 1}
    build_table([SMALL], path, rounds=2, repeats=3, min_seconds=0.0, log=lambda m: None,
                **quick)
    meta = load_table(path).meta
    assert (meta.rounds, meta.repeats, meta.min_seconds) == (2, 3, 0.0)
    # Added to without a protocol named, a table is measured by its own ...
    build_table([SMALL, V3], path, log=lines.append, **quick)
    assert "2 interleaved rounds of at least 3 timed calls" in lines[0]
    grown = load_table(path)
    assert (grown.meta.rounds, grown.meta.repeats) == (2, 3)
    assert {k for _, k in keys(V3)} <= set(grown.entries)
    assert all(e.runs == 2 * 3 for e in grown.entries.values())
    # ... and another is refused in one line, the table untouched.
    before = path.read_bytes()
    with pytest.raises(MbnasError, match="measured with rounds=2, this build measures 4"):
        build_table([SMALL], path, rounds=4, log=lambda m: None, **quick)
    assert path.read_bytes() == before
    # A new table takes the default protocol; one from before the protocol was recorded
    # reads as 5 rounds of 20 calls of 0.05 s at least, as it was measured.
    fresh = build_table([SMALL], tmp_path / "new.json", repeats=1, min_seconds=0.0,
                        log=lambda m: None, **quick)
    assert (fresh.meta.rounds, fresh.meta.repeats) == (ROUNDS, 1) == (20, 1)
    data = json.loads(before)
    for field in ("rounds", "repeats", "min_seconds"):
        del data["meta"][field]
    (tmp_path / "old.json").write_text(json.dumps(data))
    old = load_table(tmp_path / "old.json").meta
    assert (old.rounds, old.repeats, old.min_seconds) == (5, 20, 0.05)
    data["meta"]["rounds"] = 0
    (tmp_path / "old.json").write_text(json.dumps(data))
    with pytest.raises(MbnasError, match="damaged: meta.rounds 0 is not a positive integer"):
        load_table(tmp_path / "old.json")
