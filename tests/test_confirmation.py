"""The confirmation phase end to end (real Ray and Optuna, the generated data set): what it
retrains, the figures it reports, and that a killed confirmation resumes without
repeating a training."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import statistics
import subprocess
import time
from contextlib import closing

import optuna
import pytest
from cli import command, env, run
from test_search_e2e import search_args

from mbnas.search.rivals import scaled

pytestmark = pytest.mark.slow

# Priced at 32 px and 10 classes, so that V1, V2 and V3-Large fit the 6M budget (at
# x0.714, x0.96 and x0.908: the rivals scaled to it).
CONFIRM = ("--resolution", "32", "--num-classes", "10", "--references", "none",
           "--confirm-top", "2", "--confirm-seeds", "2", "--confirm-epochs", "1",
           "--no-early-stopping")


def confirmations(run_dir) -> list:
    study = optuna.load_study(study_name="confirmation",
                              storage=f"sqlite:///{run_dir / 'study.db'}")
    return study.get_trials(deepcopy=False)


def confirmation_started(run_dir) -> bool:
    """Whether the confirmation has a trial yet, read without writing: Optuna's
    load_study creates the schema, which would race the search creating it."""
    uri = f"file:{run_dir / 'study.db'}?mode=ro"
    try:
        with closing(sqlite3.connect(uri, uri=True, timeout=1)) as db:
            (count,) = db.execute(
                "SELECT COUNT(*) FROM trials JOIN studies USING (study_id)"
                " WHERE study_name = 'confirmation'").fetchone()
    except sqlite3.Error:  # not created yet, or locked by the writer
        return False
    return count > 0


def rivals() -> list:
    return scaled(6_000_000, resolution=32, num_classes=10)[0]


def check_confirmed(run_dir, stdout: str) -> None:
    """The confirmation's figures, as best.json, the summary and ``mbnas show`` give them:
    the winner confirmed at several seeds beside every rival."""
    best = json.loads((run_dir / "best.json").read_text())
    rows = {r["label"]: r for r in best["confirmation"]["rows"]}
    labels = ["mobilenet_v1 x0.714", "mobilenet_v2 x0.96", "mobilenet_v3_large x0.908"]
    assert [r.label for r in rivals()] == labels and set(labels) <= set(rows)
    # best.json and the summary name every rival with its width and MACs.
    assert [(r["label"], r["width"], r["macs"]) for r in best["rivals"]] == [
        (r.label, r.width, r.macs) for r in rivals()]
    assert all(f"rival {label}" in stdout for label in labels)
    assert all(r["macs"] <= 6_000_000 for r in best["rivals"])
    candidates = [r for r in rows.values() if r["kind"] == "candidate"]
    assert len(candidates) == 2 and all(r["seeds"] == 2 for r in rows.values())
    recorded = confirmations(run_dir)
    assert len(recorded) == 2 * len(rows)
    for label, r in rows.items():  # mean and spread over the seeds, as recorded
        accs = [t.value for t in recorded if t.user_attrs["entry"] == label.replace(" ", "-")]
        assert r["mean"] == pytest.approx(statistics.fmean(accs))
        assert r["spread"] == pytest.approx(statistics.stdev(accs))
    verdict = best["confirmation"]["verdict"]
    winner = max(candidates, key=lambda r: r["mean"])
    assert verdict["winner"] == winner["label"] == f"trial {best['winner']['number']}"
    assert verdict["beats_mobilenet"] == (verdict["lead"] > 2 * verdict["noise"])
    assert "±" in stdout and verdict["text"] in stdout
    shown = run("show", str(run_dir))
    assert shown.returncode == 0 and verdict["text"] in shown.stdout
    assert "rivals: the MobileNets scaled to the 6.0M budget" in shown.stdout
    assert all(f"  {label}: " in shown.stdout for label in labels)


def test_a_killed_confirmation_resumes_and_confirms_the_winner_beside_the_rivals(tmp_path):
    """Killed mid-way, the confirmation resumes without repeating a training, then
    reports the winner at several seeds beside every rival; a rerun trains nothing."""
    args = search_args(tmp_path, "k", 2, *CONFIRM, confirm=True)
    proc = subprocess.Popen(command(*args), env=env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run_dir = tmp_path / "k"
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if confirmation_started(run_dir):
                break
            assert proc.poll() is None, "the search ended before its confirmation began"
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    before = {(t.user_attrs["entry"], t.user_attrs["seed_index"]): t.value
              for t in confirmations(run_dir)}
    total = 2 * (2 + len(rivals()))  # two candidates and the rivals, at two seeds
    assert 1 <= len(before) < total  # the kill landed while the confirmation was training
    result = run(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    after = {(t.user_attrs["entry"], t.user_attrs["seed_index"]): t.value
             for t in confirmations(run_dir)}
    assert len(confirmations(run_dir)) == len(after) == total  # each training once
    assert all(after[k] == v for k, v in before.items())  # nothing finished was redone
    best_after = (run_dir / "best.json").read_text()
    assert f"{total - len(before)} training(s) to go" in result.stderr
    # Resumed, the confirmation reports as a whole one does.
    check_confirmed(run_dir, result.stdout)

    # Nothing new to do: a rerun trains nothing and reports the same.
    again = run(*args)
    assert again.returncode == 0 and "phase 3" not in again.stderr
    assert len(confirmations(run_dir)) == total
    assert json.loads((run_dir / "best.json").read_text())["confirmation"] == \
        json.loads(best_after)["confirmation"]
