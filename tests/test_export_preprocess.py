"""What an exported model expects of an image (issue 18): the export records the training
data's size, channels, mean, std and classes, and model.py's ``preprocess`` turns a user's
raw images into exactly what training fed the network."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import types

import pytest
import torch

from mbnas.arch.seeds import parse_arch
from mbnas.data import Batches, ImageSet, load_dataset
from mbnas.data._sets import channel_stats
from mbnas.export import Inputs, export, import_model_file
from mbnas.nn.network import build
from mbnas.training.proxy import proxy_arch, resized, weights_file

TARGET = parse_arch("net_w0.75_r64_n10_div8,stem_k3_s2_c16,ir_r1_k5_s1_e1_c16,"
                    "ds_r2_k3_s2_c24,head_c64")


@pytest.fixture(scope="module")
def synthetic():
    return load_dataset("synthetic", val_size=100)


def gray(data):
    """``data`` with one channel, as Fashion-MNIST has."""
    def one(split: ImageSet) -> ImageSet:
        return ImageSet(split.images[:, :1].contiguous(), split.labels)

    splits = {k: one(getattr(data, k)) for k in ("train", "val", "test")}
    mean, std = channel_stats(splits["train"].images)
    return dataclasses.replace(data, **splits, mean=mean, std=std)


def exported_module(data, folder):
    """model.py exported as mbnas exports a trained model: through weights_file."""
    proxy = proxy_arch(TARGET, resolution=data.size, num_classes=data.num_classes)
    trainer = types.SimpleNamespace(model=build(proxy), arch=proxy, data=data)
    payload = weights_file(trainer, TARGET)
    export(proxy, folder, formats=("py",), state_dict=payload["model"],
           inputs=Inputs.from_record(payload["input"]))
    return import_model_file(folder / "model.py")


def training_input(data, images: ImageSet) -> torch.Tensor:
    """What training and evaluation feed the network (mbnas.data.Batches)."""
    (x, _), = Batches(images, len(images), mean=data.mean, std=data.std, train=False,
                      channels_last=False)
    return x


@pytest.mark.parametrize("channels", [3, 1])
def test_preprocess_gives_what_training_fed_the_network(tmp_path, synthetic, channels):
    data = synthetic if channels == 3 else gray(synthetic)
    module = exported_module(data, tmp_path)
    raw = data.test.images[:64]
    expected = training_input(data, ImageSet(raw, data.test.labels[:64]))
    assert (expected.std() - 1).abs() < 0.5  # normalised: not the 0-255 or 0-1 scale
    inputs = [raw, raw.float() / 255]
    if channels == 1:
        inputs += [raw[:, 0], raw[:, 0].float() / 255,  # N x H x W
                   raw.expand(-1, 3, -1, -1)]  # gray images stored as RGB
    for x in inputs:
        got = module.preprocess(x)
        assert got.shape == expected.shape == (64, 3, data.size, data.size)
        assert (got - expected).abs().max().item() <= 1e-5, (x.dtype, x.shape)


def test_preprocess_resizes_as_training_did(tmp_path, synthetic):
    # --proxy-resolution resizes every split once, as uint8; preprocess must match it.
    for size in (24, 12):  # up, and down (antialiased)
        data = resized(synthetic, size)
        module = exported_module(data, tmp_path / str(size))
        expected = training_input(data, ImageSet(data.test.images[:32], data.test.labels[:32]))
        got = module.preprocess(synthetic.test.images[:32])  # the raw 16 px images
        assert got.shape == (32, 3, size, size)
        assert (got - expected).abs().max().item() <= 1e-5


def test_the_export_records_the_training_data(tmp_path, synthetic):
    data = gray(synthetic)
    module = exported_module(data, tmp_path)
    meta = json.loads((tmp_path / "arch.json").read_text())["input"]
    assert meta == {**meta, "size": 16, "channels": 3, "image_channels": 1,
                    "dataset": "synthetic", "normalisation": "trained",
                    "mean": list(data.mean), "std": list(data.std),
                    "classes": list(data.classes)}
    assert (module.MEAN, module.STD, module.CLASSES) == (data.mean, data.std, data.classes)
    assert module.IMAGE_CHANNELS == 1 and module.RESOLUTION == 16
    doc = module.__doc__
    assert "trained: on synthetic, 1-channel images at 16x16, gray repeated" in doc
    assert f"mean: [{data.mean[0]}]" in doc and '"warm-0deg"' in doc
    assert "logits = model(preprocess(images))" in doc


def test_unknown_normalisation_is_said_and_never_guessed(tmp_path, synthetic):
    proxy = proxy_arch(TARGET, resolution=16, num_classes=10)
    export(proxy, tmp_path, formats=("py",), state_dict=build(proxy).state_dict())
    meta = json.loads((tmp_path / "arch.json").read_text())["input"]
    assert meta["normalisation"] == "unknown" and meta["mean"] is None
    module = import_model_file(tmp_path / "model.py")
    assert "normalisation the weights were trained with is UNKNOWN" in " ".join(
        module.__doc__.split())
    with pytest.raises(ValueError, match="pass mean= and std="):
        module.preprocess(synthetic.test.images[:2])
    x = module.preprocess(synthetic.test.images[:2], mean=synthetic.mean, std=synthetic.std)
    expected = training_input(synthetic, ImageSet(synthetic.test.images[:2],
                                                  synthetic.test.labels[:2]))
    assert (x - expected).abs().max().item() <= 1e-5


def test_fresh_weights_have_no_normalisation(tmp_path):
    export(TARGET, tmp_path, formats=("py",))
    meta = json.loads((tmp_path / "arch.json").read_text())["input"]
    assert meta["normalisation"] == "none" and meta["size"] == 64
    module = import_model_file(tmp_path / "model.py")
    x = module.preprocess(torch.full((1, 64, 64), 255, dtype=torch.uint8))
    assert x.shape == (1, 3, 64, 64) and torch.all(x == 1)  # scaled to 0-1 only


@pytest.mark.parametrize(("images", "needle"), [
    (torch.zeros(4, 16, dtype=torch.uint8), "got shape (4, 16)"),
    (torch.zeros(1, 2, 16, 16, dtype=torch.uint8), "1 or 3 channels"),
    (torch.zeros(1, 3, 16, 16, dtype=torch.int32), "torch.int32"),
])
def test_preprocess_refuses_what_it_cannot_read(tmp_path, synthetic, images, needle):
    module = exported_module(synthetic, tmp_path)
    with pytest.raises(ValueError) as info:
        module.preprocess(images)
    assert needle in str(info.value)


def test_inputs_that_do_not_fit_the_network_are_refused(tmp_path):
    from mbnas.errors import MbnasError

    proxy = proxy_arch(TARGET, resolution=16, num_classes=10)
    record = {"dataset": "x", "channels": 1, "size": 16, "mean": [0.5], "std": [0.2],
              "classes": [str(i) for i in range(10)]}
    for bad, needle in [({"size": 32}, "trained on 32 px images"),
                        ({"classes": ["a", "b"]}, "2 class names"),
                        ({"std": [0.0]}, "std"), ({"mean": [0.1, 0.2, 0.3]}, "channel"),
                        ({"mean": None}, "input: expected")]:
        with pytest.raises(MbnasError, match="input") as info:
            export(proxy, tmp_path, inputs=Inputs.from_record({**record, **bad}))
        assert needle in str(info.value)
    assert not any(tmp_path.iterdir())


def test_generated_source_with_inputs_is_black_and_ruff_clean(tmp_path):
    awkward = ['say "hi"', "it's", 'both \' and "', "caf\u00e9 \\ back", "long " * 12]
    cases = {
        "gray": Inputs.from_record({"dataset": "fashion-mnist", "channels": 1, "size": 16,
                                    "mean": [0.2860406], "std": [0.3530242],
                                    "classes": [*awkward, *"abcde"]}),
        "rgb": Inputs.from_record({"dataset": "cifar10", "channels": 3, "size": 16,
                                   "mean": [0.4913996756076813, 0.48215848207473755,
                                            0.44653093814849854],
                                   "std": [0.2470322324632794, 0.24348513793165206,
                                           0.26158784830507834], "classes": None}),
        "unknown": Inputs.unknown("weights-1.pt was written before mbnas recorded it " * 3),
    }
    proxy = proxy_arch(TARGET, resolution=16, num_classes=10)
    files = []
    for name, inputs in cases.items():
        export(proxy, tmp_path / name, formats=("py",), inputs=inputs)
        files.append(str(tmp_path / name / "model.py"))
    module = import_model_file(files[0])
    assert module.CLASSES[:5] == tuple(awkward)
    for tool in (["black", "--check", "--diff", "--line-length", "88"],
                 ["ruff", "check", "--isolated", "--no-cache", "--select", "E,F,W,I,B,UP",
                  "--target-version", "py310", "--line-length", "88"]):
        result = subprocess.run([sys.executable, "-m", *tool, *files], cwd=tmp_path,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"{tool}: {result.stdout}{result.stderr}"


# --- end to end: a trained model, exported, fed raw test images ---------------------------


@pytest.mark.slow
def test_the_exported_model_scores_what_training_measured(tmp_path):
    """Issue 18: the exported winner scored chance on [0, 1] test images, since neither
    model.py nor arch.json said how to normalise them."""
    from cli import run

    trained = tmp_path / "trained"
    result = run("train", "mobilenet_v2", "--width", "0.35", "--dataset", "fashion-mnist",
                 "--subset", "2000", "--epochs", "2", "--val-size", "500", "--threads", "1",
                 "--out", str(trained))
    assert result.returncode == 0, result.stderr
    test_acc = json.loads((trained / "metrics.json").read_text())["test_acc"]
    assert test_acc > 0.3  # learnt something: a wrong input would show
    result = run("export", str(trained), "--out", str(tmp_path / "model"))
    assert result.returncode == 0, result.stderr

    module = import_model_file(tmp_path / "model" / "model.py")
    model = getattr(module, json.loads((tmp_path / "model" / "arch.json").read_text())[
        "class_name"])()
    model.load_state_dict(torch.load(tmp_path / "model" / "weights.pt", weights_only=True))
    model.eval()
    test = load_dataset("fashion-mnist", val_size=500, subset=2000).test  # raw uint8
    images, labels = test.images[:, 0], test.labels  # N x H x W, as a user has them
    for given in (images, images.float() / 255):
        correct = 0
        with torch.no_grad():
            for i in range(0, len(labels), 1000):
                logits = model(module.preprocess(given[i:i + 1000]))
                correct += (logits.argmax(1) == labels[i:i + 1000]).sum().item()
        assert abs(correct / len(labels) - test_acc) <= 0.002, (correct, test_acc)
