"""Spec and search-space files: one YAML reader, libyaml's where present, and a key
given twice is refused under either loader (issue 18)."""

from __future__ import annotations

import pytest
import yaml
from cli import assert_usage_error, run

from mbnas.arch.encoding import load_file
from mbnas.arch.seeds import spaces_dir
from mbnas.arch.yamlfile import FAST_LOADER, PURE_LOADER, parse_yaml
from mbnas.errors import MbnasError
from mbnas.search.space import load_space

LOADERS = pytest.mark.parametrize("loader", [FAST_LOADER, PURE_LOADER],
                                  ids=lambda c: c.__name__)


def test_the_fast_loader_is_libyamls_where_pyyaml_has_it():
    if not yaml.__with_libyaml__:
        pytest.skip("this PyYAML was built without libyaml")
    assert issubclass(FAST_LOADER, yaml.CSafeLoader)
    assert issubclass(PURE_LOADER, yaml.SafeLoader)


@LOADERS
@pytest.mark.parametrize(
    ("text", "key", "line"),
    [("width: 1.0\nstages: []\nwidth: 0.5\n", "width", 3),
     ("stages:\n  - {block: ir, channels: 8, channels: 16}\n", "channels", 2),
     ("head:\n  channels: 1280\n  fc: 1\n  fc: 2\n", "fc", 4),
     ("1: a\n1: b\n", 1, 2)],
)
def test_a_key_given_twice_is_refused(loader, text, key, line):
    with pytest.raises(MbnasError) as err:
        parse_yaml(text, "spec.yaml", loader=loader)
    assert str(err.value) == (f"spec.yaml: duplicate key {key!r} (line {line}); each key may "
                              "appear once in a mapping")


@LOADERS
def test_both_loaders_read_the_same_data(loader):
    text = (spaces_dir() / "mobilenet.yaml").read_text()
    assert parse_yaml(text, "mobilenet.yaml", loader=loader) == yaml.safe_load(text)
    # A merge key's values may be overridden by the keys after it: not a duplicate.
    merged = parse_yaml("base: &b {k: 3, s: 1}\nstage: {<<: *b, k: 5}\n", "x", loader=loader)
    assert merged["stage"] == {"k": 5, "s": 1}


@LOADERS
def test_invalid_yaml_is_still_one_line(loader):
    with pytest.raises(MbnasError, match=r"^x\.yaml: not valid YAML: ") as err:
        parse_yaml("stages: [{block: ir, channels: 8\n", "x.yaml", loader=loader)
    assert "\n" not in str(err.value)


def test_a_spec_file_with_a_duplicate_key_is_refused_by_count(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("stages: [{block: ir, channels: 16}]\nwidth: 1.0\nwidth: 0.5\n")
    assert_usage_error(run("count", str(path)), str(path), "duplicate key 'width' (line 3)")


def test_a_json_spec_with_a_duplicate_key_is_refused(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text('{"stages": [{"block": "ir", "channels": 16, "channels": 32}]}')
    with pytest.raises(MbnasError, match="spec.json: duplicate key 'channels'"):
        load_file(path)


def test_a_space_file_with_a_duplicate_key_is_refused(tmp_path):
    text = (spaces_dir() / "mobilenet.yaml").read_text()
    path = tmp_path / "space.yaml"
    path.write_text(text + "width: [1.0]\n")  # the space already sets width
    with pytest.raises(MbnasError) as err:
        load_space(path)
    assert str(err.value).startswith(f"{path}: duplicate key 'width' (line ")
    assert load_space(spaces_dir() / "mobilenet.yaml").name == "mobilenet"
