import json

import pytest
from cli import assert_usage_error, run

from mbnas.arch.cost import count
from mbnas.arch.seeds import parse_arch


def test_export_a_seed_with_modifiers(tmp_path):
    out = tmp_path / "v2"
    result = run("export", "mobilenet_v2", "--width", "0.35", "--num-classes", "10",
                 "--resolution", "64", "--out", str(out), "--class-name", "TinyV2")
    assert result.returncode == 0, result.stderr
    meta = json.loads((out / "arch.json").read_text())
    cost = count(parse_arch("mobilenet_v2", width=0.35, num_classes=10, resolution=64))
    assert (meta["macs"], meta["params"]) == (cost.macs, cost.params)
    assert meta["weights_state"] == "initialised" and meta["class_name"] == "TinyV2"
    assert "class TinyV2(Network)" in (out / "model.py").read_text()


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["runs/nope"], ["no run folder 'runs/nope'"]),
        (["mobilenet_v9"], ["unknown architecture 'mobilenet_v9'"]),
        (["mobilenet_v2", "--format", "py,keras"], ["'keras' is not a format"]),
        (["mobilenet_v2", "--class-name", "class"], ["class"]),
        (["mobilenet_v2", "--trial", "3"], ["--trial applies to run folders"]),
    ],
)
def test_bad_export_input(tmp_path, args, needles):
    result = run("export", *args, "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert_usage_error(result, *needles)
    assert not (tmp_path / "out").exists()


def test_a_folder_that_is_not_a_run(tmp_path):
    (tmp_path / "something").mkdir()
    assert_usage_error(run("export", str(tmp_path / "something")), "is not an mbnas run folder")
