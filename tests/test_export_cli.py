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


# --- runs and trained folders, built by hand --------------------------------------------

TARGET = ("net_w0.75_r64_n10_div8,stem_k3_s2_c16,ir_r1_k5_s1_e1_c16,ds_r2_k3_s2_c24,"
          "head_c64")
INPUT = {"dataset": "synthetic", "channels": 3, "size": 16, "mean": [0.5, 0.4, 0.3],
         "std": [0.2, 0.25, 0.3], "classes": [f"class-{i}" for i in range(10)]}


def weights_payload(seed: int, *, with_input: bool = True) -> dict:
    """A trial weights file as mbnas.training.proxy.weights_file writes it (older runs:
    without "input")."""
    import torch

    from mbnas.arch.encoding import encode
    from mbnas.nn.network import build
    from mbnas.training.proxy import proxy_arch

    proxy = proxy_arch(parse_arch(TARGET), resolution=16, num_classes=10)
    torch.manual_seed(seed)
    payload = {"model": build(proxy).state_dict(), "arch": encode(proxy), "target": TARGET}
    if with_input:
        payload["input"] = INPUT
    return payload


def fake_run(folder, *, absolute: bool = False, with_input: bool = True):
    """A run folder with one completed trial (number 1, the winner) and its weights,
    recorded relative to the run, or (``absolute``) as runs made before recorded them."""
    import csv

    import torch

    from mbnas.outcome import COLUMNS

    (folder / "weights").mkdir(parents=True)
    torch.save(weights_payload(0, with_input=with_input), folder / "weights" / "trial-1.pt")
    checkpoint = str((folder / "weights" / "trial-1.pt").resolve()) if absolute \
        else "weights/trial-1.pt"
    macs = count(parse_arch(TARGET)).macs
    row = {"number": 1, "name": "", "role": "search", "state": "complete", "arch": TARGET,
           "macs": macs, "params": 1, "val_acc": 0.5, "epochs": 1, "seconds": 1.0,
           "train_seconds": 1.0, "error": "", "checkpoint": checkpoint, "weights": "kept"}
    with (folder / "trials.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerow({k: row[k] for k in COLUMNS})
    (folder / "best.json").write_text(json.dumps({"budget": 10 * macs, "winner": row}))
    return folder


def fake_trained(folder, *, with_input: bool = True):
    """A `mbnas train` folder: model.pt and metrics.json."""
    import torch

    folder.mkdir(parents=True)
    payload = weights_payload(0, with_input=with_input)
    torch.save(payload, folder / "model.pt")
    (folder / "metrics.json").write_text(json.dumps({
        "arch": TARGET, "proxy_arch": payload["arch"], "dataset": "synthetic",
        "val_acc": 0.5, "test_acc": 0.5}))
    return folder


def test_a_copied_run_exports_its_own_weights_never_the_originals(tmp_path):
    # Issue 18: trials.csv of a copied run named the original's files by absolute path,
    # and export read them, even where the copy's own file was gone.
    import shutil

    import torch

    original = fake_run(tmp_path / "original", absolute=True)
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    own = weights_payload(1)  # the copy's weights differ from the original's
    torch.save(own, copy / "weights" / "trial-1.pt")
    # From inside the original, where a path resolved against the working folder finds it.
    result = run("export", str(copy), "--out", str(tmp_path / "out"), cwd=original)
    assert result.returncode == 0, result.stderr
    exported = torch.load(tmp_path / "out" / "weights.pt", weights_only=True)
    assert all(torch.equal(exported[k], v) for k, v in own["model"].items())

    (copy / "weights" / "trial-1.pt").unlink()
    assert_usage_error(run("export", str(copy), "--out", str(tmp_path / "gone"), cwd=original),
                       "trial 1 of", "has no trained weights",
                       f"{copy / 'weights' / 'trial-1.pt'} is missing", "--target")
    assert not (tmp_path / "gone").exists()
    assert (original / "weights" / "trial-1.pt").is_file()


@pytest.mark.parametrize("kind", ["run", "trained"])
@pytest.mark.parametrize("option", [["--width", "0.5"], ["--resolution", "64"],
                                    ["--num-classes", "5"]])
def test_modifiers_are_refused_for_trained_weights(tmp_path, kind, option):
    # Issue 18: `mbnas export RUN --width 0.5` was silently ignored.
    source = (fake_run if kind == "run" else fake_trained)(tmp_path / "source")
    out = tmp_path / "out"
    assert_usage_error(run("export", str(source), *option, "--out", str(out)),
                       f"{option[0]} does not apply to", "fix the network",
                       "width 0.75, 16 px, 10 classes", "add --target")
    assert not out.exists()


@pytest.mark.parametrize("kind", ["run", "trained"])
def test_target_takes_the_modifiers(tmp_path, kind):
    source = (fake_run if kind == "run" else fake_trained)(tmp_path / "source")
    out = tmp_path / "out"
    result = run("export", str(source), "--target", "--width", "0.5", "--resolution", "96",
                 "--num-classes", "5", "--out", str(out))
    assert result.returncode == 0, result.stderr
    meta = json.loads((out / "arch.json").read_text())
    expected = parse_arch(TARGET, width=0.5, resolution=96, num_classes=5)
    assert (meta["width"], meta["resolution"], meta["num_classes"]) == (0.5, 96, 5)
    assert meta["macs"] == count(expected).macs and meta["weights_state"] == "initialised"
    assert meta["input"]["normalisation"] == "none"


def test_target_is_refused_for_a_spec(tmp_path):
    assert_usage_error(run("export", "mobilenet_v2", "--target", "--out", str(tmp_path / "o")),
                       "--target applies to run folders", "drop --target")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("kind", ["run", "trained"])
def test_the_export_says_what_the_weights_expect_of_an_image(tmp_path, kind):
    make = fake_run if kind == "run" else fake_trained
    result = run("export", str(make(tmp_path / "new")), "--out", str(tmp_path / "a"))
    assert result.returncode == 0, result.stderr
    given = json.loads((tmp_path / "a" / "arch.json").read_text())["input"]
    assert given["normalisation"] == "trained" and given["dataset"] == "synthetic"
    assert (given["size"], given["channels"], given["image_channels"]) == (16, 3, 3)
    assert (given["mean"], given["std"], given["classes"]) == (
        INPUT["mean"], INPUT["std"], INPUT["classes"])
    text = (tmp_path / "a" / "model.py").read_text()
    assert "MEAN = (0.5, 0.4, 0.3)" in text and '"class-9"' in text

    # Weights files of older runs do not say: the export says it is unknown.
    result = run("export", str(make(tmp_path / "old", with_input=False)),
                 "--out", str(tmp_path / "b"))
    assert result.returncode == 0, result.stderr
    given = json.loads((tmp_path / "b" / "arch.json").read_text())["input"]
    assert given["normalisation"] == "unknown" and given["mean"] is None
    assert "written before mbnas recorded" in given["note"]
    assert "is UNKNOWN" in (tmp_path / "b" / "model.py").read_text()
