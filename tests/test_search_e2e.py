"""End to end: real Ray Tune, real Optuna, a tiny space and the synthetic data set."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest
from cli import assert_usage_error, command, env, run, snapshot
from procs import exposed, listening, processes_of

from mbnas.arch.cost import macs
from mbnas.arch.encoding import decode
from mbnas.outcome import parse_role
from mbnas.search.rivals import RIVALS as REFERENCES
from mbnas.search.study import network_key

pytestmark = pytest.mark.slow

TINY = str(Path(__file__).parent / "spaces" / "tiny.yaml")
BUDGET = 6_000_000


# A protocol under which the tiny space's networks learn the generated set (the canonical
# references stay near chance on it, which the search warns about); without --lr and
# --batch-size every network ends at chance and the search names no winner.
EPOCHS = "2"
PROTOCOL = ("--dataset", "synthetic", "--epochs", EPOCHS, "--lr", "0.2", "--batch-size", "32")


def search_args(runs: Path, name: str, trials: int, *extra: str,
                confirm: bool = False) -> list[str]:
    return ["search", "--budget", "6M", "--space", TINY, *PROTOCOL,
            "--trials", str(trials), "--runs-dir", str(runs), "--name", name,
            "--threads", "1", "--cpus-per-trial", "1",
            *([] if confirm else ["--no-confirm"]), *extra]


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
        if row["state"] == "repeat":  # answered from the trial that trained it, untrained
            original = by_number[str(parse_role(row["role"])[1])]
            assert network_key(original["arch"]) == network_key(row["arch"])  # one network
            assert original["state"] != "repeat"
            assert row["val_acc"] == original["val_acc"] and row["epochs"] == "0"
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert row["state"] in ("complete", "repeat")
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


# A run folder's bound, besides the weights --keep-weights keeps (docs/search.md, "Disk
# stays bounded"): Tune's record of a trial (its config in the experiment state) and its
# rows in the study.
BYTES_PER_TRIAL = 100_000


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def check_disk(run_dir: Path, rows: list[dict], best: int) -> None:
    """No Tune checkpoint outlives its trial; weights/ holds exactly the weights the
    ``best:K`` policy keeps; the rest of the folder stays within BYTES_PER_TRIAL."""
    assert not list((run_dir / "ray").glob("*/*/checkpoint_*"))
    complete = [r for r in rows if r["state"] == "complete"]
    search = sorted((r for r in complete if r["role"] != "reference"),
                    key=lambda r: (-float(r["val_acc"]), int(r["macs"]), int(r["number"])))
    keep = search[:best] + [r for r in complete
                            if r["role"] == "reference" or r["role"].startswith("seed:")]
    kept = [r for r in complete if r["weights"] == "kept"]
    assert [r["number"] or r["name"] for r in kept] == \
        [r["number"] or r["name"] for r in complete if r in keep]
    for r in complete:
        if r["weights"] == "kept":
            # recorded relative to the run, so that a copied run is self-contained
            assert r["checkpoint"] == f"weights/{Path(r['checkpoint']).name}"
            assert (run_dir / r["checkpoint"]).is_file()
        else:
            assert r["weights"] == f"not kept (--keep-weights best:{best})" and not r["checkpoint"]
    assert sorted(p.name for p in (run_dir / "weights").iterdir()) == \
        sorted(Path(r["checkpoint"]).name for r in kept)
    finished = [r for r in rows if r["state"] in ("complete", "stopped", "failed", "diverged")]
    rest = folder_bytes(run_dir) - folder_bytes(run_dir / "weights")
    assert rest / len(finished) < BYTES_PER_TRIAL, (rest, len(finished))


# A rival as a named reference: V3-Large, whose SE and hard-swish the tiny space lacks.
NAMED = ("mobilenet_v3_large",)


def test_search_runs_resumes_and_shows(tmp_path):
    # No rival fits 6M at 224 px; named references are trained whatever they cost.
    keep = ("--keep-weights", "best:1", "--references", ",".join(NAMED))
    result = run(*search_args(tmp_path, "e2e", 4, *keep))
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "e2e"
    rows = check_run_is_consistent(run_dir, 4, references=NAMED)
    assert "winner" in result.stdout and "reference mobilenet_v3_large " in result.stdout
    # One-seed proxy accuracies say how far they can be trusted (the generated data set's
    # protocol has no measured spread).
    noise = json.loads((tmp_path / "e2e" / "best.json").read_text())["proxy_noise"]
    assert "one training at one seed" in noise and "not measured" in noise
    assert noise in result.stdout and noise in run("show", str(tmp_path / "e2e")).stdout
    assert any(r["role"].startswith("repair of #") for r in rows)  # over-budget samples repaired
    # By default every trial trains to the end: no early stopping on early epochs' noise.
    trained = [r for r in rows if r["state"] not in ("over_budget", "repeat")]
    assert trained and all(r["state"] == "complete" and r["epochs"] == EPOCHS for r in trained)
    check_disk(run_dir, rows, best=1)

    # Ray reuses a worker from trial to trial (the search's trials follow the reference in
    # the one worker here): a score must not depend on it, but equal what `mbnas train`
    # gives in a fresh process.
    last = [r for r in rows if r["state"] == "complete" and r["role"] != "reference"][-1]
    retrain = run("train", last["arch"], *PROTOCOL, "--threads", "1",
                  "--out", str(tmp_path / "retrain"))
    assert retrain.returncode == 0, retrain.stderr
    metrics = json.loads((tmp_path / "retrain" / "metrics.json").read_text())
    assert metrics["val_acc"] == float(last["val_acc"])

    # The same command with more trials resumes: nothing finished is repeated or changed
    # (but weights that fall out of the best one go).
    result = run(*search_args(tmp_path, "e2e", 6, *keep))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "phase 1" not in result.stderr  # references are done already
    after = check_run_is_consistent(run_dir, 6, references=NAMED)
    check_disk(run_dir, after, best=1)
    weights = ("checkpoint", "weights")
    assert [{k: v for k, v in r.items() if k not in weights} for r in after[:len(rows)]] == \
        [{k: v for k, v in r.items() if k not in weights} for r in rows]
    for r, a in zip(rows, after[:len(rows)], strict=True):  # weights only go, by policy
        assert a["weights"] == r["weights"] or (r["weights"], a["weights"]) == (
            "kept", "not kept (--keep-weights best:1)")

    # Everything finished: a third run trains nothing, and starts no Ray to do it.
    result = run(*search_args(tmp_path, "e2e", 6, *keep))
    assert result.returncode == 0 and "already done" in result.stderr
    assert "Ray" not in result.stderr
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
    trained = torch.load(run_dir / winner["checkpoint"], weights_only=True)["model"]
    assert all(torch.equal(model.state_dict()[k], v) for k, v in trained.items())
    assert_usage_error(run("export", str(run_dir), "--trial", "999"), "has no trial '999'")
    over = next(r for r in after if r["state"] == "over_budget")
    assert_usage_error(run("export", str(run_dir), "--trial", over["number"]),
                       "is over_budget", "export a completed one")
    # A trial whose weights were not kept: export says so, and --target still works.
    dropped = next(r for r in after if r["weights"].startswith("not kept"))
    assert_usage_error(run("export", str(run_dir), "--trial", dropped["number"],
                           "--out", str(tmp_path / "dropped")),
                       f"trial {dropped['number']} of", "has no trained weights",
                       "not kept (--keep-weights best:1)", "--target")
    assert not (tmp_path / "dropped").exists()
    target = run("export", str(run_dir), "--trial", dropped["number"], "--target",
                 "--out", str(tmp_path / "dropped"))
    assert target.returncode == 0 and "freshly initialised" in target.stdout, target.stderr

    shown = run("show", str(run_dir))
    assert shown.returncode == 0, shown.stderr
    assert "winner: trial" in shown.stdout and "reference mobilenet_v3_large" in shown.stdout
    kept = [r["number"] or r["name"] for r in after if r["weights"] == "kept"]
    assert f"trained weights kept for {len(kept)} trial(s): {', '.join(kept)}" in shown.stdout
    assert "(not kept (--keep-weights best:1))" in shown.stdout
    table = {line.split("|")[1].strip(): line for line in shown.stdout.splitlines()
             if line.startswith("| ")}
    assert "| not kept |" in table[dropped["number"]]
    assert (run_dir / "accuracy_vs_macs.png").stat().st_size > 10_000


def test_the_same_command_gives_the_same_trials(finished_run, tmp_path):
    """README: run one trial at a time, the same command gives the same trials.  The
    finished run's command, in a fresh folder with one trial more, repeats its trials to
    the last digit (sampler, repairs, training, early stopping, faults) and adds one."""
    result = run(*search_args(tmp_path, "again", 4, "--references", "none",
                              "--inject-faults", "1:raise", "--early-stopping"))
    assert result.returncode == 0, result.stderr[-3000:]
    same = ("number", "role", "state", "arch", "macs", "params", "val_acc", "epochs", "error")
    first = read_csv(finished_run / "trials.csv")
    again = read_csv(tmp_path / "again" / "trials.csv")
    assert [{k: r[k] for k in same} for r in again[:len(first)]] == \
        [{k: r[k] for k in same} for r in first]
    assert len(counted(first)) == 3 and len(counted(again)) == 4
    assert any(r["state"] == "complete" for r in first)


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


def study_trials(run_dir: Path) -> list[optuna.trial.FrozenTrial]:
    """The search study's trials as they are now (also while a search writes them)."""
    storage = optuna.storages.RDBStorage(f"sqlite:///{run_dir / 'study.db'}",
                                         engine_kwargs={"connect_args": {"timeout": 60}})
    try:
        return optuna.load_study(study_name="search", storage=storage).get_trials()
    except KeyError:  # the study is not created yet
        return []
    finally:
        storage.engine.dispose()


def mid_training(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    """Trials that are running and have reported an epoch (which records the worker they
    run on; without early stopping only the last epoch is validated): live work, mid-way."""
    return [t for t in trials
            if t.state == optuna.trial.TrialState.RUNNING and t.user_attrs.get("attempts")]


def same_trial(before: optuna.trial.FrozenTrial, after: optuna.trial.FrozenTrial) -> bool:
    return (before.state, before.values, before.params, before.user_attrs,
            before.intermediate_values) == (after.state, after.values, after.params,
                                            after.user_attrs, after.intermediate_values)


def test_killed_search_resumes_without_losing_or_repeating_trials(tmp_path):
    """Killed with kill -9 mid-training, a search resumes: nothing finished is lost or
    repeated, the cut-off trial is trained again.  While it runs, its local Ray and its
    driver listen on loopback only."""
    args = search_args(tmp_path, "killed", 5, "--references", "mobilenet_v2",
                       "--inject-faults", "3:slow,4:slow,5:slow", "--no-early-stopping",
                       "--keep-weights", "all")
    proc = subprocess.Popen(command(*args), env=env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run_dir = tmp_path / "killed"
    sockets: set[tuple[str, int, str]] = set()

    def trained_two() -> bool:  # sampling the search's sockets meanwhile
        sockets.update(listening(processes_of(proc.pid)))
        return _complete_search_trials(run_dir) >= 2

    try:
        _wait_for(trained_two, 300, proc)
        # A second search on the same run refuses while the first holds the lock.
        second = run(*args, timeout=120)
        assert_usage_error(second, "in use by another mbnas search")
        # Kill while a (slow) trial is mid-training: it has reported its first epoch and
        # sleeps 3 s before its second.
        seen: list[list] = []
        _wait_for(lambda: mid_training(seen.append(study_trials(run_dir)) or seen[-1]), 120,
                  proc)
        before = seen[-1]
        rows_before = read_csv(run_dir / "trials.csv")
        os.killpg(proc.pid, signal.SIGKILL)  # kill -9 of the driver and its local Ray
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    names = {name for _, _, name in sockets}
    # The check saw Ray at work: its control plane, a worker and the driver's own server.
    assert {"gcs_server", "raylet"} <= names, sockets
    assert any(name.startswith("ray::") for name in names), sockets
    assert any(name.startswith("python") for name in names), sockets
    assert not exposed(sockets), f"listening beyond loopback: {exposed(sockets)}"
    live = mid_training(before)
    assert live, "the kill hit no running trial"
    result = run(*search_args(tmp_path, "killed", 5, "--no-early-stopping",
                              "--keep-weights", "all"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "listen on 127.0.0.1 only" in result.stderr
    assert f"trials #{live[0].number}" in result.stderr and "cut off" in result.stderr
    after = check_run_is_consistent(run_dir, 5, references=("mobilenet_v2",))
    trials = {t.number: t for t in study_trials(run_dir)}
    for t in before:  # every trial of the study, whatever its state
        now = trials[t.number]
        if t.state.is_finished():  # kept as it was, to the last attribute
            assert same_trial(t, now), t.number
        elif t.state == optuna.trial.TrialState.RUNNING:  # cut off, then trained again
            assert now.state == optuna.trial.TrialState.FAIL
            assert now.user_attrs["error"].startswith("interrupted")
            assert now.params == t.params
            assert t.user_attrs.items() <= now.user_attrs.items()
            reruns = [o for o in trials.values()
                      if o.user_attrs.get("role") == f"rerun of #{t.number}"]
            assert len(reruns) == 1 and reruns[0].params == t.params
            assert reruns[0].state == optuna.trial.TrialState.COMPLETE
        else:  # queued (a repair or a seed): trained on resume, as it was queued
            assert now.state.is_finished() and now.params == t.params
    by_number = {(r["number"], r["name"]): r for r in after}
    for row in rows_before:  # the table agrees: finished rows byte for byte
        if row["state"] not in ("running", "queued"):
            assert by_number[(row["number"], row["name"])] == row
    assert [r["number"] for r in after if r["state"] == "interrupted"] == \
        [str(t.number) for t in before if t.state == optuna.trial.TrialState.RUNNING]


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
        (["--budget", "6M", "--keep-weights", "best:0"], ["--keep-weights", "'best:0'", "best:K"]),
        # The README: "changed settings are refused" (this run was made with --epochs 2).
        (["--budget", "6M", "--dataset", "synthetic", "--epochs", "3"],
         ["run 'search-6M' was started with train=", "'epochs': 2", "rerun with the same"]),
    ],
)
def test_bad_search_input_is_refused_before_anything_is_written(finished_run, args, needles):
    runs = finished_run.parent  # holds search-6M, the folder these commands would use
    before = snapshot(runs.parent)
    result = run("search", "--space", TINY, "--runs-dir", str(runs), *args)
    assert_usage_error(result, *needles)
    assert snapshot(runs.parent) == before  # no file changed, no folder added


def test_trial_faults_are_recorded_and_the_search_goes_on(tmp_path):
    result = run(*search_args(tmp_path, "faults", 5, "--references", "none",
                              "--no-early-stopping",
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
    assert len(by_state["complete"]) == 2 and "stopped" not in by_state
    assert len(counted(rows)) == 5
    # The kill hit live work: the worker training the fourth trial died after its first
    # epoch, and Ray ran the trial again on another worker from that epoch's checkpoint.
    markers = list((tmp_path / "faults" / "ray").glob("*/*/killed-once"))
    assert len(markers) == 1, markers
    killed = int(markers[0].read_text())
    trials = study_trials(tmp_path / "faults")
    retried = [t for t in trials if len(t.user_attrs.get("attempts", [])) > 1]
    assert len(retried) == 1, [t.user_attrs.get("attempts") for t in trials]
    first, again = retried[0].user_attrs["attempts"]
    assert first["pid"] == killed and first["from_epoch"] == 0
    assert again["pid"] != killed and again["from_epoch"] == 1
    assert retried[0].state == optuna.trial.TrialState.COMPLETE
    assert retried[0].user_attrs["epochs"] == 2
    assert not [t.number for t in trials for a in t.user_attrs.get("attempts", [])
                if a["pid"] == killed and t.number > retried[0].number]  # it stayed dead
    assert not list((tmp_path / "faults" / "ray").glob("*/*/checkpoint_*"))


def test_a_search_where_every_trial_fails_ends_with_an_error(tmp_path):
    result = run(*search_args(tmp_path, "allfail", 2, "--inject-faults", "1:raise,2:raise"))
    assert result.returncode == 1
    # By default the references are the rivals scaled to the budget: none fits 6M at 224 px.
    assert ("no rival from mobilenet_v1, mobilenet_v2, mobilenet_v3_large: over the 6.0M "
            "budget even at width 0.25, the narrowest a rival takes (41.0M MACs, 37.2M MACs, "
            "24.8M MACs)") in result.stderr
    assert "phase 1" not in result.stderr
    assert "every search trial failed" in result.stderr
    assert "RuntimeError: injected fault" in result.stderr
    before = snapshot(tmp_path)
    assert_usage_error(run("export", str(tmp_path / "allfail")), "has no winner")
    assert snapshot(tmp_path) == before


# NSGA-II, the multi-objective sampler, through Ray; every sampler drives a Pareto study
# in tests/test_study_repeats.py, which shares this path.
def test_pareto_objective_reports_the_front(tmp_path):
    result = run(*search_args(tmp_path, "pareto", 3, "--references", "none",
                              "--objective", "pareto", "--sampler", "nsga2",
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
