"""Search -> train the winner -> export it with its trained weights -> plain PyTorch, end to
end with real Ray and Optuna on the generated data set (README, "From a search to a
model")."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from cli import assert_usage_error, run, snapshot
from test_search_e2e import PROTOCOL

pytestmark = pytest.mark.slow


def test_the_winner_is_trained_again_and_exported_with_its_weights(finished_run, tmp_path):
    run_dir = finished_run  # a real search's folder, which training its winner leaves as it is
    untouched = snapshot(run_dir)
    winner = json.loads((run_dir / "best.json").read_text())["winner"]

    out = tmp_path / "final"
    trained = run("train", str(run_dir), *PROTOCOL, "--subset", "0", "--threads", "1",
                  "--out", str(out))
    assert trained.returncode == 0, trained.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["arch"] == winner["arch"]  # the winner's target spec, trained again
    assert metrics["source"] == {"run": str(run_dir), "trial": str(winner["number"]),
                                 "role": winner["role"], "proxy_val_acc": winner["val_acc"]}
    assert len(metrics["epochs"]) == 2 and metrics["status"] == "complete"
    # Training again into the same folder is refused: nothing saved is overwritten.
    assert_usage_error(run("train", str(run_dir), "--dataset", "synthetic", "--out", str(out)),
                       "model.pt exists")
    assert_usage_error(run("train", "mobilenet_v2", "--trial", "3"), "--trial applies to run")
    assert snapshot(run_dir) == untouched

    exported = run("export", str(out), "--out", str(tmp_path / "model"))
    assert exported.returncode == 0, exported.stderr
    meta = json.loads((tmp_path / "model" / "arch.json").read_text())
    assert meta["weights_state"] == "trained" and meta["encoding"] == metrics["proxy_arch"]
    assert meta["provenance"]["trial"] == str(winner["number"])
    # What the weights expect of an image travels with them (issue 18).
    assert meta["input"]["normalisation"] == "trained"
    assert meta["input"]["dataset"] == "synthetic" and len(meta["input"]["classes"]) == 10
    saved = torch.load(out / "model.pt", weights_only=True)["model"]
    weights = torch.load(tmp_path / "model" / "weights.pt", weights_only=True)
    assert weights.keys() == saved.keys()
    assert all(torch.equal(weights[k], saved[k]) for k in saved)

    # The README's ten lines of plain PyTorch, in a fresh interpreter without mbnas.
    snippet = (
        "import importlib.util, json, torch\n"
        "spec = importlib.util.spec_from_file_location('model', 'model/model.py')\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "meta = json.load(open('model/arch.json'))\n"
        "model = getattr(module, meta['class_name'])()\n"
        "model.load_state_dict(torch.load('model/weights.pt'))\n"
        "images = torch.randint(0, 256, (1, 3, 16, 16), dtype=torch.uint8)\n"
        "print(model.eval()(module.preprocess(images)).shape)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    plain = subprocess.run([sys.executable, "-I", "-c", snippet], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120)
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.strip() == f"torch.Size([1, {meta['num_classes']}])"
