"""Bad input to every command: one line on stderr, exit 2, nothing saved is touched.

Each command runs beside a real finished run folder (study, weights, Tune folder; see
the ``finished_run`` fixture) and must leave it, and the folder around it, as it was."""

from __future__ import annotations

import csv

import pytest
from cli import assert_usage_error, run, snapshot


def _rows(run_dir) -> list[dict]:
    with (run_dir / "trials.csv").open(newline="") as f:
        return list(csv.DictReader(f))


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
    (["search", "--budget", "1e30"], ["--budget: 1e+30 MACs", "100G"]),
    (["search", "--budget", "joules=3"], ["--budget", "unknown cost metric 'joules'",
                                          "macs, params"]),
    (["search", "--budget", "params=lots"], ["--budget", "'lots'"]),
    (["search", "--budget", "300M", "--budget", "macs=200M"], ["--budget",
                                                               "names a metric twice"]),
    (["search", "--budget", "300M", "--pareto-metric", "joules"], ["unknown cost metric"]),
    (["search", "--budget", "300M", "--trials", "1000000000"], ["--trials", "10,000"]),
    (["search", "--budget", "300M", "--threads", "1000"], ["--threads: 1000", "cores"]),
    (["train", "mobilenet_v2", "--threads", "1000"], ["--threads: 1000", "cores"]),
    (["search", "--budget", "300M", "--gpus-per-trial", "-1"], ["--gpus-per-trial"]),
    (["search", "--budget", "300M", "--keep-weights", "some"], ["--keep-weights", "'some'"]),
    (["show", "runs/missing"], ["no run folder 'runs/missing'"]),
    (["show", "{run}", "--frobnicate"], ["unrecognized arguments"]),
    (["export", "{run}", "--trial", "999"], ["has no trial '999'", "completed trials: {done}"]),
    (["export", "{run}", "--trial", "{failed}"],
     ["is failed: RuntimeError: injected fault: the trial raised"]),
    (["export", "{run}", "--trial", "{over}"], ["is over_budget", "export a completed one"]),
    (["frobnicate"], ["invalid choice: 'frobnicate'"]),
]


@pytest.mark.slow  # the run folder comes from a real search
@pytest.mark.parametrize(("args", "needles"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input(finished_run, args, needles):
    rows = _rows(finished_run)
    fill = {"{run}": str(finished_run),
            "{failed}": next(r["number"] for r in rows if r["state"] == "failed"),
            "{over}": next(r["number"] for r in rows if r["state"] == "over_budget"),
            "{done}": ", ".join(r["number"] for r in rows if r["state"] == "complete")}

    def filled(text: str) -> str:
        for key, value in fill.items():
            text = text.replace(key, value)
        return text

    home = finished_run.parent.parent  # holds runs/ only; commands run from here
    before = snapshot(home)
    assert any(p.startswith("runs/search-6M/weights/") for p in before)
    result = run(*map(filled, args), cwd=home)
    assert_usage_error(result, *map(filled, needles))
    assert snapshot(home) == before  # byte for byte; no folder added


def test_show_on_a_folder_that_is_not_a_run(tmp_path):
    assert_usage_error(run("show", str(tmp_path)), "is not an mbnas run folder")
