import json

import pytest
from hypothesis import given, settings
from strategies import archs

from mbnas.arch.encoding import decode, encode, from_dict, load_file, save_file, to_dict
from mbnas.arch.seeds import SEEDS, seed
from mbnas.errors import MbnasError

V2_STRING = (
    "net_w1.0_r224_n1000_div8,stem_k3_s2_c32,ir_r1_k3_s1_e1_c16,ir_r2_k3_s2_e6_c24,"
    "ir_r3_k3_s2_e6_c32,ir_r4_k3_s2_e6_c64,ir_r3_k3_s1_e6_c96,ir_r3_k3_s2_e6_c160,"
    "ir_r1_k3_s1_e6_c320,head_c1280"
)


def test_v2_encodes_as_its_table():
    assert encode(seed("mobilenet_v2")) == V2_STRING
    assert decode(V2_STRING) == seed("mobilenet_v2")


@settings(max_examples=300)
@given(archs())
def test_string_form_round_trips(arch):
    text = encode(arch)
    assert "\n" not in text and " " not in text
    assert decode(text) == arch


@settings(max_examples=100)
@given(archs())
def test_file_forms_round_trip(tmp_path_factory, arch):
    folder = tmp_path_factory.mktemp("specs")
    for name in ("spec.json", "spec.yaml"):
        save_file(arch, folder / name)
        assert load_file(folder / name) == arch
    assert from_dict(json.loads(json.dumps(to_dict(arch)))) == arch


@pytest.mark.parametrize("name", SEEDS)
def test_seeds_round_trip(name):
    assert decode(encode(seed(name))) == seed(name)


def test_defaults_and_whitespace():
    arch = decode(" ir_r2_k5_s2_e4.5_c24 , ds_r1_k3_s1_c32_relu ")
    assert arch.width == 1.0 and arch.resolution == 224 and arch.head is None
    assert arch.stages[0].expansion == 4.5 and arch.stages[1].activation == "relu"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty architecture string"),
        ("ir_r1_k3_s1_c16_zz", "unknown token 'zz'"),
        ("ir_r1_k4_s1_c16", "kernel: 4 is not allowed"),
        ("ir_r1_k3_s1", "channels token 'c<number>' is required"),
        ("ir_rx_k3_c16", "unknown token 'rx'"),
        ("ir_r1.5_c16", "repeats: expected an integer"),
        ("head_c1280,ir_r1_c16", "unexpected item 'head_c1280'"),
        ("stem_c32", "no stage"),
        ("net_w0_r224,ir_r1_c16", "width: 0 is not allowed"),
        ("net_w1.0_r8,ir_r1_s2_c16,ir_r1_s2_c16,ir_r1_s2_c16,ir_r1_s2_c16",
         "resolution: 8 is too small"),
        ("ds_r1_e6_c16", "unknown token 'e6'"),
        ("ir_r1_e6_x64_c16", "either as a ratio"),
        ("head_c960_f0,ir_r1_c16", "unexpected item"),
    ],
)
def test_malformed_strings_say_what_is_wrong(text, message):
    with pytest.raises(MbnasError, match=message.replace("(", r"\(").replace(".", r"\.")):
        decode(text)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("stages: []", "'stages' must be a non-empty list"),
        ("- 1\n- 2", "expected a mapping"),
        ("stages: [{block: ir}]", r"stages\[0\]: missing key 'channels'"),
        ("stages: [{block: ir, channels: 8, kernal: 3}]", r"stages\[0\]: unknown key 'kernal'"),
        ("stages: [{block: ir, channels: 8, kernel: 4}]", r"stages\[0\]\.kernel: 4"),
        ("stages: [{block: ir, channels: 8}]\nwidht: 2", "unknown key 'widht'"),
        ("stages: [{block: ir, channels: 8}]\nstem: {channels: -1}", "stem.channels"),
        ("stages: [{block: ir, channels: 8\n", "not valid YAML"),
    ],
)
def test_bad_spec_files_name_the_key(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(MbnasError, match=message) as info:
        load_file(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
