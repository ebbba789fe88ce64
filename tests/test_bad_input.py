"""Bad input to every command: one line on stderr, exit 2, nothing saved is touched."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cli import assert_usage_error, run


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """A small finished run folder, as a search leaves it."""
    folder = tmp_path / "runs" / "done"
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"name": "done"}))
    (folder / "trials.csv").write_text(
        "number,name,role,state,arch,macs,params,val_acc,epochs,seconds,train_seconds,"
        "error,checkpoint\n"
        "0,,search,failed,ir_r1_k3_s1_c16,1000,10,nan,0,1.0,0.0,RuntimeError: boom,\n"
        "1,,search,complete,ir_r1_k3_s1_c16,1000,10,0.5,2,1.0,0.9,,\n")
    (folder / "best.json").write_text(json.dumps({"budget": 2000, "winner": None,
                                                  "references": [], "pareto_front": []}))
    return folder


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


CASES = [
    (["count", "mobilenet_v2", "--width", "0"], ["--width"]),
    (["count", "ir_r0_c16"], ["repeats: 0"]),
    (["train", "mobilenet_v2", "--dataset", "imagenet"], ["--dataset"]),
    (["train", "mobilenet_v2", "--data-dir", "/nonexistent"], ["/nonexistent"]),
    (["baseline", "--models", "mobilenet_v3@1"], ["--models", "mobilenet_v3@1"]),
    (["baseline", "--epochs", "0"], ["--epochs"]),
    (["search", "--budget", "300X"], ["--budget", "300X"]),
    (["search", "--budget", "300M", "--trials", "0"], ["--trials"]),
    (["search", "--budget", "300M", "--concurrency", "0"], ["--concurrency"]),
    (["search", "--budget", "300M", "--gpus-per-trial", "-1"], ["--gpus-per-trial"]),
    (["show", "runs/missing"], ["no run folder 'runs/missing'"]),
    (["show", "{run}", "--frobnicate"], ["unrecognized arguments"]),
    (["export", "{run}", "--trial", "7"], ["has no trial '7'", "completed trials: 1"]),
    (["export", "{run}", "--trial", "0"], ["is failed: RuntimeError: boom"]),
    (["export", "{run}"], ["has no winner"]),
    (["frobnicate"], ["invalid choice: 'frobnicate'"]),
]


@pytest.mark.parametrize(("args", "needles"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input(run_dir, args, needles):
    before = _digest(run_dir)
    args = [a.replace("{run}", str(run_dir)) for a in args]
    result = run(*args, cwd=run_dir.parent.parent)
    assert_usage_error(result, *needles)
    assert _digest(run_dir) == before  # byte for byte
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(before)


def test_show_on_a_folder_that_is_not_a_run(tmp_path):
    assert_usage_error(run("show", str(tmp_path)), "is not an mbnas run folder")
