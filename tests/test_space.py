import random

import pytest

from mbnas.arch.cost import count, macs
from mbnas.arch.encoding import decode
from mbnas.arch.seeds import seed
from mbnas.errors import MbnasError
from mbnas.search.space import load_space, parse_space, resolve_space


@pytest.fixture(scope="module")
def space():
    return resolve_space(None)


def random_params(space, rng):
    return space.sample(lambda name, choices: rng.choice(list(choices)))


def test_default_space_holds_both_seeds(space):
    seeds = dict(space.seeds)
    v1, v2 = decode(seeds["mobilenet_v1"]), decode(seeds["mobilenet_v2"])
    assert space.arch(space.params_of(v2)) == seed("mobilenet_v2")
    # V1 regrouped into seven stages is the same network: same MACs and parameters
    assert count(space.arch(space.params_of(v1))) == count(seed("mobilenet_v1"))
    assert space.stride_patterns == ("1122221", "1212221", "1221221", "1222121", "1222211")


def test_samples_are_valid_and_replay_exactly(space):
    rng = random.Random(0)
    for _ in range(300):
        params = random_params(space, rng)
        arch = space.arch(params)
        assert arch.output_stride == 32
        assert space.params_of(arch) == params
        expansion_asked = {k for k in params if k.endswith("_expansion")}
        assert expansion_asked == {f"s{i + 1}_expansion" for i, s in enumerate(arch.stages)
                                   if s.block == "ir" and len(space.stages[i].expansion) > 1}


@pytest.mark.parametrize("budget", [20e6, 100e6, 300e6, 600e6])
def test_repair_always_fits_and_stays_in_the_space(space, budget):
    rng = random.Random(int(budget))
    for _ in range(40):
        params = random_params(space, rng)
        repaired = space.repair(params, int(budget))
        assert macs(space.arch(repaired)) <= budget
        assert space.params_of(space.arch(repaired)) == repaired
        if macs(space.arch(params)) <= budget:
            assert repaired == params


def test_cheapest_is_cheapest(space):
    rng = random.Random(1)
    cheapest = macs(space.cheapest())
    assert all(macs(space.arch(random_params(space, rng))) >= cheapest for _ in range(500))
    with pytest.raises(MbnasError, match="fits a budget"):
        space.repair(random_params(space, rng), cheapest - 1)


GOOD = {"stages": [{"channels": [16, 24], "stride": [1, 2]}, {"channels": [32], "stride": [2]}],
        "output_stride": 8}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"stages": []}, "'stages' must be a non-empty list"),
        ({"stages": [{"stride": [2]}]}, r"stages\[0\]: missing key 'channels'"),
        ({"stages": [{"channels": [16], "kernal": [3]}]}, r"stages\[0\]: unknown key 'kernal'"),
        ({"stages": [{"channels": [16], "kernel": [4]}]}, r"stages\[0\]\.kernel: 4 is not allowed"),
        ({"stages": [{"channels": ["wide"]}]}, r"stages\[0\]\.channels: 'wide' is not allowed"),
        ({"stages": [{"channels": [16], "block": ["mb"]}]}, r"stages\[0\]\.block: 'mb'"),
        ({"stages": [{"channels": [16], "repeats": [1.5]}]}, "whole numbers"),
        ({"stages": [{"channels": []}]}, "the list of choices is empty"),
        ({"stages": [{"channels": [16], "stride": [1]}]},
         "no stride pattern reaches output_stride 8"),
        ({"output_stride": 12}, "output_stride: 12 is not allowed"),
        ({"width": [0]}, "width: 0 is not allowed"),
        ({"rounding": "ceil"}, "rounding: 'ceil' is not allowed"),
        ({"colour": "red"}, "unknown key 'colour'"),
        ({"resolution": [2]}, "resolution: 2 is too small"),
        ({"seeds": {"x": "ir_r1_k3_s2_c16"}}, "seeds.x: 1 stages; space"),
    ],
)
def test_bad_space_names_the_key(change, message):
    with pytest.raises(MbnasError, match=message):
        parse_space({**GOOD, **change})


def test_space_file_errors_name_the_file(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("stages: [{channels: [16], kernel: [4]}]\n")
    with pytest.raises(MbnasError, match=f"{path}: stages"):
        load_space(path)
    with pytest.raises(MbnasError, match="unknown search space 'nope'"):
        resolve_space("nope")
    with pytest.raises(MbnasError, match="cannot read search space"):
        resolve_space(str(tmp_path / "missing.yaml"))
