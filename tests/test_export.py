"""The exported standalone model against the in-framework one: same keys, outputs and cost."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from strategies import archs
from test_builder import measured_macs, n_params
from torch import nn

from mbnas.arch.cost import count
from mbnas.arch.encoding import encode
from mbnas.arch.seeds import parse_arch
from mbnas.errors import MbnasError
from mbnas.export import FORMATS, ONNX_OPSET, export, import_model_file, load, read_state_dict
from mbnas.nn.network import build

CUSTOM = ("net_w0.75_r64_n10_div8,stem_k3_s2_c16,ir_r1_k5_s1_e1_c16,ds_r2_k3_s2_c24,"
          "ir_r2_k7_s2_e4_c40_noskip_relu,head_c320")
ARCHS = {
    "mobilenet_v1": parse_arch("mobilenet_v1", resolution=64, num_classes=10),
    "mobilenet_v2": parse_arch("mobilenet_v2", resolution=64, num_classes=10),
    "custom": parse_arch(CUSTOM),
}
PROVENANCE = {"run": "runs/2024-06-01", "trial": 17, "proxy_accuracy": 0.8123,
              "dataset": "fashion-mnist"}


def trained_like(arch, seed: int, batches: int = 2, batch_size: int = 4) -> dict:
    """Weights that make every layer matter, as training would.

    Fresh weights with fresh batch-norm statistics (mean 0, variance 1) shrink the signal
    at every depthwise layer, so the logits barely depend on the input and a wrong block
    would go unseen.  Here the statistics are those of the layer's actual inputs, and the
    batch-norm scales are large enough that ReLU6 clips, so relu and relu6 differ.
    """
    torch.manual_seed(seed)
    model = build(arch)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for m in norms:
            m.weight.uniform_(0.5, 4.0)
            m.bias.normal_(0, 0.5)
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
        model.classifier.weight.normal_(0, model.classifier.in_features**-0.5)
        model.classifier.bias.normal_(0, 0.1)
        model.train()
        for _ in range(batches):
            model(torch.randn(batch_size, 3, arch.resolution, arch.resolution))
    return model.state_dict()


def framework_output(arch, state_dict: dict, x: torch.Tensor) -> torch.Tensor:
    model = build(arch)
    model.load_state_dict(state_dict)
    with torch.no_grad():
        return model.eval()(x)


# --- a fresh interpreter, torch only -----------------------------------------------------

# Runs in the export folder with -I (no PYTHONPATH, no user site, no cwd on the path).  mbnas
# is installed in this venv, so a finder refuses it: model.py must not need it.
FRESH = r"""
import importlib.abc
import json
import sys


class NoMbnas(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "mbnas":
            raise ImportError("the exported model.py imported mbnas")


sys.meta_path.insert(0, NoMbnas())
sys.path.insert(0, ".")
import torch
import model

name = json.load(open("arch.json"))["class_name"]
net = getattr(model, name)()
net.load_state_dict(torch.load("weights.pt", weights_only=True))
net.eval()
with torch.no_grad():
    torch.save(net(torch.load("input.pt")), "output.pt")
print("MBNAS", sorted(m for m in sys.modules if m.split(".")[0] == "mbnas"))
"""


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_a_fresh_interpreter_reproduces_the_framework_model(tmp_path, name):
    arch = ARCHS[name]
    weights = trained_like(arch, seed=1)
    export(arch, tmp_path, state_dict=weights, provenance=PROVENANCE)
    saved = torch.load(tmp_path / "weights.pt", weights_only=True)
    assert list(saved) == list(build(arch).state_dict())
    assert all(torch.equal(saved[k], weights[k]) for k in weights)
    torch.manual_seed(2)
    x = torch.randn(2, 3, arch.resolution, arch.resolution)
    torch.save(x, tmp_path / "input.pt")

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-I", "-c", FRESH], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "MBNAS []" in result.stdout

    got = torch.load(tmp_path / "output.pt", weights_only=True)
    expected = framework_output(arch, weights, x)
    assert got.shape == (2, arch.num_classes)
    assert (expected[0] - expected[1]).abs().max() > 0.1  # the input matters: 1e-6 is tight
    assert (got - expected).abs().max().item() <= 1e-6


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_exported_module_costs_what_the_counter_says(tmp_path, name):
    arch = ARCHS[name]
    export(arch, tmp_path)
    model = load(tmp_path)
    cost = count(arch)
    assert n_params(model) == cost.params
    assert measured_macs(model, arch.resolution) == cost.macs


@settings(max_examples=15)
@given(archs(max_extra_resolution=16))
def test_exported_source_matches_the_builder_for_random_specs(tmp_path_factory, arch):
    folder = tmp_path_factory.mktemp("random")
    export(arch, folder, formats=("py",))
    cls = import_model_file(folder / "model.py").MobileNet
    # Same modules built in the same order and initialised alike: equal under one seed.
    torch.manual_seed(0)
    exported = cls()
    torch.manual_seed(0)
    reference = build(arch).state_dict()
    ours = exported.state_dict()
    assert list(ours) == list(reference)
    assert all(torch.equal(ours[k], reference[k]) for k in reference)
    weights = trained_like(arch, seed=0, batches=1, batch_size=2)
    exported.load_state_dict(weights)
    x = torch.randn(2, 3, arch.resolution, arch.resolution)
    with torch.no_grad():
        got = exported.eval()(x)
    assert (got - framework_output(arch, weights, x)).abs().max().item() <= 1e-6


# --- torchvision's MobileNetV2, rebuilt from the paper --------------------------------------


def _make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's rule: nearest multiple of 8, at least 8, never 10% below ``value``."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


# Sandler et al. 2018, Table 2 after the stem: expansion t, channels c, repeats n, stride s.
V2_TABLE = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
            (6, 160, 3, 2), (6, 320, 1, 1)]


def reference_mobilenet_v2(width: float, num_classes: int = 1000) -> nn.Module:
    """torchvision.models.mobilenet_v2(width_mult=width), written without mbnas."""

    def conv_bn(cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1,
                act: bool = True) -> nn.Sequential:
        layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
                  nn.BatchNorm2d(cout)]
        return nn.Sequential(*layers, *([nn.ReLU6()] if act else []))

    cin = _make_divisible(32 * width)
    last = _make_divisible(1280 * max(1.0, width))
    layers = [conv_bn(3, cin, 3, 2)]
    for t, c, n, s in V2_TABLE:
        cout = _make_divisible(c * width)
        for i in range(n):
            hidden = int(round(cin * t))
            expand = [conv_bn(cin, hidden)] if t != 1 else []
            layers.append(nn.Sequential(
                *expand,
                conv_bn(hidden, hidden, 3, s if i == 0 else 1, groups=hidden),
                conv_bn(hidden, cout, act=False),
            ))
            cin = cout
    layers.append(conv_bn(cin, last))
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2),
                         nn.Linear(last, num_classes))


@pytest.mark.parametrize("width", [1.4, 1.0, 0.75, 0.5, 0.35])
def test_exported_v2_has_torchvisions_parameter_count(tmp_path, width):
    export(parse_arch("mobilenet_v2", width=width), tmp_path, formats=("py",))
    exported = import_model_file(tmp_path / "model.py").MobileNet()
    assert n_params(exported) == n_params(reference_mobilenet_v2(width))
    if width == 1.0:
        assert n_params(exported) == 3_504_872  # torchvision's published figure


# --- the generated file ----------------------------------------------------------------------


def _imported_modules(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add((node.module or "").split(".")[0])
    return names


def test_generated_source_is_black_and_ruff_clean(tmp_path):
    cases = {name: (arch, "MobileNet", PROVENANCE) for name, arch in ARCHS.items()}
    awkward = {"note": 'ends in """ and a \\ backslash\nand a newline, caf\u00e9',
               "2": [1, 2.5, None], "long": "x" * 200}
    cases["awkward"] = (parse_arch("mobilenet_v2", width=1.4), "FoundNet_7", awkward)
    files = []
    for name, (arch, class_name, provenance) in cases.items():
        export(arch, tmp_path / name, formats=("py",), class_name=class_name,
               provenance=provenance)
        path = tmp_path / name / "model.py"
        files.append(str(path))
        text = path.read_text()
        tree = ast.parse(text)
        assert _imported_modules(tree) <= {"torch", "typing"}
        assert "mbnas" not in _imported_modules(tree)
        doc = ast.get_docstring(tree)
        assert encode(arch) in doc.split()
        assert f"MACs: {count(arch).macs:,}" in doc and "one per multiply-add" in doc
        assert f"class {class_name}(Network)" in text

    tools = [
        ["black", "--check", "--diff", "--line-length", "88"],
        ["ruff", "check", "--isolated", "--no-cache"],  # ruff's default rules
        ["ruff", "check", "--isolated", "--no-cache", "--select", "E,F,W,I,B,UP",
         "--target-version", "py310", "--line-length", "88"],  # this project's, at 88
    ]
    for tool in tools:
        result = subprocess.run([sys.executable, "-m", *tool, *files], cwd=tmp_path,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"{tool}: {result.stdout}{result.stderr}"


def test_docstring_and_metadata_say_where_the_weights_come_from(tmp_path):
    arch = ARCHS["custom"]
    export(arch, tmp_path / "trained", state_dict=trained_like(arch, 0), provenance=PROVENANCE)
    export(arch, tmp_path / "fresh")
    trained = json.loads((tmp_path / "trained" / "arch.json").read_text())
    fresh = json.loads((tmp_path / "fresh" / "arch.json").read_text())
    cost = count(arch)
    assert trained["encoding"] == encode(arch) and parse_arch(trained["encoding"]) == arch
    assert (trained["macs"], trained["params"], trained["weights"]) == (
        cost.macs, cost.params, cost.weights)
    assert (trained["width"], trained["resolution"], trained["num_classes"]) == (0.75, 64, 10)
    assert trained["class_name"] == "MobileNet"
    assert trained["files"] == {"py": "model.py", "pt": "weights.pt", "json": "arch.json"}
    assert trained["weights_state"] == "trained" and fresh["weights_state"] == "initialised"
    assert trained["provenance"] == {**PROVENANCE, "mbnas_version": "0.1.0",
                                     "weights": "trained"}
    doc = ast.get_docstring(ast.parse((tmp_path / "trained" / "model.py").read_text()))
    assert "holds trained weights" in doc and 'dataset: "fashion-mnist"' in doc
    assert "trial: 17" in doc and 'mbnas_version: "0.1.0"' in doc
    doc = ast.get_docstring(ast.parse((tmp_path / "fresh" / "model.py").read_text()))
    assert "freshly initialised (untrained) weights" in doc


# --- TorchScript and ONNX --------------------------------------------------------------------


# torch 2.13 deprecates torch.jit; loading a TorchScript file still works.
_JIT_DEPRECATED = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")


@_JIT_DEPRECATED
def test_torchscript_and_onnx_agree_with_eager(tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="format 'onnx' needs pip install mbnas[export]")
    pytest.importorskip("onnxscript", reason="format 'onnx' needs pip install mbnas[export]")
    arch = ARCHS["custom"]
    paths = export(arch, tmp_path, formats=FORMATS, state_dict=trained_like(arch, 3))
    assert set(paths) == {*FORMATS, "json"} and all(p.is_file() for p in paths.values())
    meta = json.loads(paths["json"].read_text())
    assert meta["torchscript"] == "script" and meta["onnx"]["opset"] == ONNX_OPSET

    torch.manual_seed(4)
    x = torch.randn(2, 3, 64, 64)  # exported at batch 1: batch 2 needs the dynamic axis
    with torch.no_grad():
        eager = load(tmp_path)(x)
        scripted = torch.jit.load(str(paths["torchscript"]))(x)
    assert (scripted - eager).abs().max().item() <= 1e-5

    session = ort.InferenceSession(str(paths["onnx"]), providers=["CPUExecutionProvider"])
    (given,) = session.get_inputs()
    assert given.name == "input" and given.shape[1:] == [3, 64, 64]
    assert not isinstance(given.shape[0], int)  # a named, dynamic batch
    (logits,) = session.run(None, {"input": x.numpy()})
    assert logits.shape == (2, 10)
    assert abs(torch.from_numpy(logits) - eager).max().item() <= 1e-5
    (one,) = session.run(None, {"input": x[:1].numpy()})
    assert abs(torch.from_numpy(one) - eager[:1]).max().item() <= 1e-5


@_JIT_DEPRECATED
def test_torchscript_falls_back_to_tracing(tmp_path, monkeypatch):
    def no_script(*args, **kwargs):
        raise RuntimeError("cannot script")

    monkeypatch.setattr(torch.jit, "script", no_script)
    arch = ARCHS["custom"]
    paths = export(arch, tmp_path, formats=("torchscript",))
    assert json.loads(paths["json"].read_text())["torchscript"] == "trace"
    x = torch.randn(1, 3, 64, 64)
    traced = torch.jit.load(str(paths["torchscript"]))
    expected = framework_output(arch, dict(traced.state_dict()), x)
    assert (traced(x) - expected).abs().max().item() <= 1e-6


def test_onnx_without_its_packages_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # import onnxscript fails
    with pytest.raises(MbnasError, match=r"pip install mbnas\[export\]"):
        export(ARCHS["custom"], tmp_path / "out", formats=("py", "onnx"))
    assert not (tmp_path / "out").exists()


# --- loading and bad input -------------------------------------------------------------------


def test_load_returns_a_working_module_in_eval_mode(tmp_path):
    arch = ARCHS["custom"]
    weights = trained_like(arch, 5)
    export(arch, tmp_path, class_name="FoundNet", state_dict=weights)
    model = load(tmp_path)
    assert type(model).__name__ == "FoundNet" and not model.training
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), framework_output(arch, weights, x))


def _one_line_error(call, *needles: str) -> None:
    with pytest.raises(MbnasError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message


def test_load_names_what_is_missing(tmp_path):
    arch = ARCHS["custom"]
    _one_line_error(lambda: load(tmp_path / "nowhere"), "nowhere", "no such folder")
    _one_line_error(lambda: load(tmp_path), "no arch.json", "not an mbnas export")
    export(arch, tmp_path / "pt_only", formats=("pt",))
    _one_line_error(lambda: load(tmp_path / "pt_only"), "no model.py", "'py'")
    export(arch, tmp_path / "py_only", formats=("py",))
    _one_line_error(lambda: load(tmp_path / "py_only"), "no weights.pt", "'pt'")
    export(ARCHS["mobilenet_v1"], tmp_path / "v1")
    (tmp_path / "py_only" / "weights.pt").write_bytes((tmp_path / "v1" / "weights.pt")
                                                     .read_bytes())
    _one_line_error(lambda: load(tmp_path / "py_only"), "cannot load", "weights.pt",
                    "key(s) missing, e.g. 'features.1.project.0.weight'")
    (tmp_path / "py_only" / "weights.pt").write_text("not a pickle")
    _one_line_error(lambda: load(tmp_path / "py_only"), "cannot read weights", "weights.pt")


def test_read_state_dict_takes_a_bare_state_dict_or_a_training_checkpoint(tmp_path):
    weights = trained_like(ARCHS["custom"], 0)
    torch.save(weights, tmp_path / "bare.pt")
    torch.save({"model": weights, "optimizer": {"state": {}}, "epoch": 3}, tmp_path / "ckpt.pt")
    for name in ("bare.pt", "ckpt.pt"):
        got = read_state_dict(tmp_path / name)
        assert list(got) == list(weights) and all(torch.equal(got[k], weights[k]) for k in got)
    torch.save({"epoch": 3}, tmp_path / "other.pt")
    _one_line_error(lambda: read_state_dict(tmp_path / "other.pt"), "holds no state_dict")
    _one_line_error(lambda: read_state_dict(tmp_path / "none.pt"), "no such file")


@pytest.mark.parametrize("class_name", ["", "1Net", "my-net", "class", "None", "int",
                                        "ConvBNAct", "BLOCKS", "nn", 3])
def test_bad_class_name(tmp_path, class_name):
    _one_line_error(lambda: export(ARCHS["custom"], tmp_path / "out", class_name=class_name),
                    "class_name")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("formats", [("py", "keras"), (), ("tflite",), 7])
def test_unknown_format_names_the_allowed_ones(tmp_path, formats):
    _one_line_error(lambda: export(ARCHS["custom"], tmp_path, formats=formats),
                    "formats", *FORMATS)


def test_a_single_format_may_be_a_string(tmp_path):
    assert set(export(ARCHS["custom"], tmp_path, formats="py")) == {"py", "json"}


def test_other_bad_input(tmp_path):
    arch = ARCHS["custom"]
    other = trained_like(ARCHS["mobilenet_v1"], 0)
    _one_line_error(lambda: export(arch, tmp_path / "new", state_dict=other),
                    "state_dict does not fit", "missing", "unexpected", "of another shape")
    prefixed = {f"module.{k}": v for k, v in trained_like(arch, 0).items()}
    _one_line_error(lambda: export(arch, tmp_path, state_dict=prefixed),
                    "key(s) unexpected, e.g. 'module.features.0.0.weight'")
    _one_line_error(lambda: export(arch, tmp_path, provenance={"run": object()}), "provenance")
    _one_line_error(lambda: export(arch, tmp_path, provenance=["run"]), "provenance")
    _one_line_error(lambda: export(CUSTOM, tmp_path), "expected an Arch", "parse_arch")
    (tmp_path / "file").write_text("")
    _one_line_error(lambda: export(arch, tmp_path / "file"), "cannot create export folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


# --- writing ---------------------------------------------------------------------------------


def test_export_replaces_the_earlier_export_and_nothing_else(tmp_path):
    # Issue 18: the earlier export's files that this one does not write (its weights.pt,
    # a model.onnx) were left beside the new ones, as if they belonged to them.
    export(ARCHS["custom"], tmp_path, formats=("py", "pt", "torchscript"))
    (tmp_path / "notes.txt").write_text("mine")
    export(ARCHS["mobilenet_v1"], tmp_path, formats=("py",))
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert encode(ARCHS["mobilenet_v1"]) in (tmp_path / "model.py").read_text()
    assert json.loads((tmp_path / "arch.json").read_text())["files"] == {
        "py": "model.py", "json": "arch.json"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arch.json", "model.py", "notes.txt"]


def test_export_removes_only_files_an_export_wrote(tmp_path):
    (tmp_path / "weights.pt").write_text("the user's, never exported here")
    export(ARCHS["custom"], tmp_path, formats=("py",))
    # An arch.json naming a user's file (edited by hand, or not ours) removes nothing of it.
    meta = json.loads((tmp_path / "arch.json").read_text())
    meta["files"].update({"notes": "notes.txt", "up": "../outside.txt"})
    (tmp_path / "arch.json").write_text(json.dumps(meta))
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path.parent / "outside.txt").write_text("mine too")
    export(ARCHS["custom"], tmp_path, formats=("pt",))
    assert (tmp_path / "weights.pt").read_bytes() != b"the user's, never exported here"
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert (tmp_path.parent / "outside.txt").read_text() == "mine too"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arch.json", "notes.txt",
                                                          "weights.pt"]
    (tmp_path / "arch.json").write_text("not json")  # an unreadable record removes nothing
    export(ARCHS["custom"], tmp_path, formats=("py",))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arch.json", "model.py",
                                                          "notes.txt", "weights.pt"]


@pytest.mark.parametrize(("error", "raised"), [(OSError(28, "No space left on device"),
                                                 MbnasError),
                                                (KeyboardInterrupt(), KeyboardInterrupt)])
def test_a_failed_export_leaves_the_previous_one_intact(tmp_path, monkeypatch, error, raised):
    export(ARCHS["custom"], tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def save_half(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"half a state_dict")
        raise error

    monkeypatch.setattr(torch, "save", save_half)
    with pytest.raises(raised):
        export(ARCHS["mobilenet_v1"], tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
