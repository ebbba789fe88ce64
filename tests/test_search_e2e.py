"""End to end: real Ray Tune, real Optuna, a tiny space and the synthetic data set."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from cli import assert_usage_error, run

from mbnas.arch.cost import macs
from mbnas.arch.encoding import decode
from mbnas.arch.seeds import REFERENCES

pytestmark = pytest.mark.slow

TINY = str(Path(__file__).parent / "spaces" / "tiny.yaml")
BUDGET = 6_000_000


def search_args(runs: Path, name: str, trials: int, *extra: str) -> list[str]:
    return ["search", "--budget", "6M", "--space", TINY, "--dataset", "synthetic",
            "--epochs", "2", "--trials", str(trials), "--runs-dir", str(runs), "--name", name,
            "--threads", "1", "--cpus-per-trial", "1", *extra]


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def counted(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["role"] != "reference"
            and r["state"] in ("complete", "stopped", "failed", "diverged")]


def check_run_is_consistent(run_dir: Path, trials: int,
                            references=REFERENCES) -> list[dict]:
    rows = read_csv(run_dir / "trials.csv")
    storage = f"sqlite:///{run_dir / 'study.db'}"
    study = optuna.load_study(study_name="search", storage=storage)
    by_number = {r["number"]: r for r in rows if r["role"] != "reference"}
    assert sorted(map(int, by_number)) == [t.number for t in study.trials]
    for t in study.trials:
        row = by_number[str(t.number)]
        assert t.state != optuna.trial.TrialState.RUNNING
        assert row["arch"] == t.user_attrs["arch"]
        assert int(row["macs"]) == t.user_attrs["macs"] == macs(decode(row["arch"]))
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert row["state"] == "complete"
            assert float(row["val_acc"]) == pytest.approx(t.value)
            assert int(row["macs"]) <= BUDGET  # every completed trial is within budget
            assert t.constraints["macs_over_budget"] <= 0
        if row["state"] == "over_budget":
            assert int(row["macs"]) > BUDGET and row["epochs"] == "0"
    assert len(counted(rows)) == trials
    refs = {r["name"]: r for r in rows if r["role"] == "reference"}
    assert set(refs) == set(references)
    assert all(r["state"] == "complete" and float(r["val_acc"]) > 0 for r in refs.values())
    best = json.loads((run_dir / "best.json").read_text())
    winner = best["winner"]
    assert winner["role"] != "reference" and winner["macs"] <= BUDGET
    done = [r for r in rows if r["role"] != "reference" and r["state"] == "complete"]
    assert float(winner["val_acc"]) == max(float(r["val_acc"]) for r in done)
    return rows


def test_search_runs_resumes_and_shows(tmp_path):
    result = run(*search_args(tmp_path, "e2e", 4))
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "e2e"
    rows = check_run_is_consistent(run_dir, 4)
    assert "winner" in result.stdout and "mobilenet_v3_large (reference)" in result.stdout
    assert any(r["role"].startswith("repair of #") for r in rows)  # over-budget samples repaired
    weights = [r["checkpoint"] for r in rows if r["state"] == "complete"]
    assert weights and all(Path(w).exists() for w in weights)

    # Ray reuses a worker from trial to trial (V2 follows V1 in the same one here): the
    # score must not depend on it, but equal what `mbnas train` gives in a fresh process.
    v2 = next(r for r in rows if r["name"] == "mobilenet_v2")
    retrain = run("train", "mobilenet_v2", "--dataset", "synthetic", "--epochs", "2",
                  "--threads", "1", "--out", str(tmp_path / "retrain"))
    assert retrain.returncode == 0, retrain.stderr
    metrics = json.loads((tmp_path / "retrain" / "metrics.json").read_text())
    assert metrics["val_acc"] == float(v2["val_acc"])

    # The same command with more trials resumes: nothing finished is repeated or changed.
    result = run(*search_args(tmp_path, "e2e", 6))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "phase 1" not in result.stderr  # references are done already
    after = check_run_is_consistent(run_dir, 6)
    assert after[:len(rows)] == rows

    # Everything finished: a third run trains nothing.
    result = run(*search_args(tmp_path, "e2e", 6))
    assert result.returncode == 0 and "already done" in result.stderr
    assert read_csv(run_dir / "trials.csv") == after

    export_dir = tmp_path / "exported"
    exported = run("export", str(run_dir), "--out", str(export_dir))
    assert exported.returncode == 0, exported.stderr
    meta = json.loads((export_dir / "arch.json").read_text())
    winner = json.loads((run_dir / "best.json").read_text())["winner"]
    assert meta["provenance"]["trial"] == str(winner["number"])
    assert meta["weights_state"] == "trained"
    import torch

    import mbnas

    model = mbnas.load(export_dir)
    trained = torch.load(winner["checkpoint"], weights_only=True)["model"]
    assert all(torch.equal(model.state_dict()[k], v) for k, v in trained.items())
    assert_usage_error(run("export", str(run_dir), "--trial", "999"), "has no trial '999'")
    over = next(r for r in after if r["state"] == "over_budget")
    assert_usage_error(run("export", str(run_dir), "--trial", over["number"]),
                       "is over_budget", "export a completed one")

    shown = run("show", str(run_dir))
    assert shown.returncode == 0, shown.stderr
    assert "winner: trial" in shown.stdout and "reference mobilenet_v1" in shown.stdout
    assert (run_dir / "accuracy_vs_macs.png").stat().st_size > 10_000


def _wait_for(predicate, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        assert proc.poll() is None, "the search ended before the condition was met"
        time.sleep(0.5)
    raise AssertionError("timed out")


def _complete_search_trials(run_dir: Path) -> int:
    path = run_dir / "trials.csv"
    if not path.exists():
        return 0
    try:
        return sum(r["state"] == "complete" and r["role"] != "reference"
                   for r in read_csv(path))
    except (OSError, KeyError, csv.Error):
        return 0


def test_killed_search_resumes_without_losing_or_repeating_trials(tmp_path):
    args = search_args(tmp_path, "killed", 5, "--references", "mobilenet_v1,mobilenet_v2",
                       "--inject-faults", "3:slow,4:slow")
    proc = subprocess.Popen([sys.executable, "-m", "mbnas", *args], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run_dir = tmp_path / "killed"
    try:
        _wait_for(lambda: _complete_search_trials(run_dir) >= 2, 300, proc)
        # A second search on the same run refuses while the first holds the lock.
        second = run(*args, timeout=120)
        assert_usage_error(second, "in use by another mbnas search")
        before = read_csv(run_dir / "trials.csv")
        os.killpg(proc.pid, signal.SIGKILL)  # kill -9 of the driver and its local Ray
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    finished = {r["number"]: r for r in before if r["state"] == "complete" and r["number"]}
    result = run(*search_args(tmp_path, "killed", 5))
    assert result.returncode == 0, result.stderr[-3000:]
    after = check_run_is_consistent(run_dir, 5)
    by_number = {r["number"]: r for r in after}
    for number, row in finished.items():  # nothing finished was lost or redone
        assert by_number[number] == row
    interrupted = [r for r in after if r["state"] == "interrupted"]
    for r in interrupted:
        assert any(o["role"] == f"rerun of #{r['number']}" for o in after)


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--budget", "300X"], ["--budget", "300X"]),
        (["--budget=-5M"], ["--budget", "'-5M' is not a positive count"]),
        (["--budget", "0"], ["--budget"]),
        (["--budget", ""], ["--budget"]),
        (["--budget", "1K"], ["below the cheapest member", "costs"]),
        (["--budget", "6M", "--name", "bad/name"], ["run name 'bad/name' is not allowed"]),
        (["--budget", "6M", "--space", "nope"], ["unknown search space 'nope'"]),
        (["--budget", "6M", "--dataset", "mnist"], ["--dataset"]),
    ],
)
def test_bad_search_input_is_refused_before_anything_is_written(tmp_path, args, needles):
    existing = tmp_path / "runs" / "search-6M"
    existing.mkdir(parents=True)
    (existing / "trials.csv").write_text("number\n")
    before = hashlib.sha256((existing / "trials.csv").read_bytes()).hexdigest()
    result = run("search", "--space", TINY, "--runs-dir", str(tmp_path / "runs"), *args)
    assert_usage_error(result, *needles)
    assert sorted(p.name for p in existing.iterdir()) == ["trials.csv"]
    assert hashlib.sha256((existing / "trials.csv").read_bytes()).hexdigest() == before


def test_trial_faults_are_recorded_and_the_search_goes_on(tmp_path):
    result = run(*search_args(tmp_path, "faults", 5, "--references", "none",
                              "--inject-faults", "1:raise,2:nan,3:oom,4:kill"))
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [r for r in read_csv(tmp_path / "faults" / "trials.csv")
            if r["state"] not in ("over_budget",)]
    by_state = {}
    for r in rows:
        by_state.setdefault(r["state"], []).append(r)
    errors = " | ".join(r["error"] for r in rows)
    assert "RuntimeError: injected fault" in errors
    assert "MemoryError: injected fault: out of memory" in errors
    assert "loss became nan" in errors
    assert len(by_state["failed"]) == 2 and len(by_state["diverged"]) == 1
    # The killed worker was retried by Ray and the trial finished; so did the fifth.
    assert len(by_state["complete"]) + len(by_state.get("stopped", [])) == 2
    assert len(counted(rows)) == 5


def test_a_search_where_every_trial_fails_ends_with_an_error(tmp_path):
    result = run(*search_args(tmp_path, "allfail", 2, "--references", "none",
                              "--inject-faults", "1:raise,2:raise"))
    assert result.returncode == 1
    assert "every search trial failed" in result.stderr
    assert "RuntimeError: injected fault" in result.stderr


@pytest.mark.parametrize("sampler", ["tpe", "nsga2", "random"])
def test_pareto_objective_reports_the_front(tmp_path, sampler):
    result = run(*search_args(tmp_path, "pareto", 3, "--references", "none",
                              "--objective", "pareto", "--sampler", sampler,
                              "--no-early-stopping"))
    assert result.returncode == 0, result.stderr[-3000:]
    study = optuna.load_study(study_name="search",
                              storage=f"sqlite:///{tmp_path / 'pareto' / 'study.db'}")
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    best = json.loads((tmp_path / "pareto" / "best.json").read_text())
    front = best["pareto_front"]
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert front and len(done) == 3
    for row in front:  # nothing completed beats a front member on both counts
        assert not any(t.values[0] > row["val_acc"] and t.user_attrs["macs"] < row["macs"]
                       for t in done)
