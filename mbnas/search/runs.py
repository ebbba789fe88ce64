"""Reading a finished (or running) search's folder: its trials and their weights.

Light on purpose (csv and json only): ``mbnas show`` and ``mbnas export`` read runs
without opening the Optuna study.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from mbnas.errors import MbnasError
from mbnas.outcome import Status, TrialRecord

WEIGHTS_DIR = "weights"  # a run's trained proxy weights, one file per trial


def weights_entry(name: str) -> str:
    """How a run records a weights file: relative to the run folder (``weights/trial-7.pt``),
    so that a copied or moved run finds its own files."""
    return f"{WEIGHTS_DIR}/{Path(name).name}"


def weights_path(run: str | Path, checkpoint: str) -> Path | None:
    """The file a trial's recorded ``checkpoint`` names, always inside ``run``: runs made
    before paths were stored relative recorded absolute ones, which are read by file name
    in the run's own ``weights/`` (a run never reads or deletes a file outside itself)."""
    if not checkpoint:
        return None
    return Path(run) / WEIGHTS_DIR / Path(checkpoint).name


def is_run(path: str | Path) -> bool:
    path = Path(path)
    return path.is_dir() and ((path / "run.json").exists() or (path / "trials.csv").exists())


def check_run(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise MbnasError(f"no run folder {str(path)!r}; runs live under runs/<name> "
                         "(mbnas search --name NAME)")
    if not is_run(path):
        raise MbnasError(f"{str(path)!r} is not an mbnas run folder (it has no run.json or "
                         "trials.csv)")
    if not (path / "trials.csv").exists():
        raise MbnasError(f"run {str(path)!r} has no trials.csv yet: no trial has finished")
    return path


def read_trials(run: str | Path) -> list[dict]:
    """The rows of ``trials.csv``, parsed as :class:`~mbnas.outcome.TrialRecord` rows (a
    search trial's number as text, "" for a reference)."""
    path = check_run(run) / "trials.csv"
    try:
        with path.open(newline="") as f:
            records = [TrialRecord.from_row(row) for row in csv.DictReader(f)]
    except (OSError, csv.Error, KeyError, ValueError) as err:
        raise MbnasError(f"cannot read {path}: {err}") from None
    rows = [r.to_row() for r in records]
    for row in rows:
        row["number"] = str(row["number"])
    return rows


def read_best(run: str | Path) -> dict:
    path = check_run(run) / "best.json"
    if not path.exists():
        raise MbnasError(f"run {str(run)!r} has no best.json yet: let the search finish "
                         "(or rerun the same command to resume it)")
    return json.loads(path.read_text())


def pick_trial(run: str | Path, which: str = "best") -> dict:
    """A trial by ``best``, its number, or a reference's name, with a clear error."""
    rows = read_trials(run)
    if which == "best":
        winner = read_best(run).get("winner")
        if not winner:
            raise MbnasError(f"run {str(run)!r} has no winner: no search trial finished "
                             "within budget")
        which = str(winner["number"])
    for row in rows:
        if (which.isdigit() and row["number"] == which) or (row["name"] and row["name"] == which):
            if row["state"] != Status.COMPLETE:
                why = f": {row['error']}" if row["error"] else ""
                raise MbnasError(f"trial {which} of {str(run)!r} is {row['state']}{why}; "
                                 f"export a completed one: {_completed(rows)}")
            return row
    raise MbnasError(f"run {str(run)!r} has no trial {which!r}; completed trials: "
                     f"{_completed(rows)}")


def _completed(rows: list[dict]) -> str:
    done = [r["number"] or r["name"] for r in rows if r["state"] == Status.COMPLETE]
    return ", ".join(done) if done else "none"
