"""Reading a finished (or running) search's folder: its trials and their weights.

Light on purpose (csv and json only): ``mbnas show`` and ``mbnas export`` read runs
without opening the Optuna study.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from mbnas.errors import MbnasError
from mbnas.outcome import TrialRecord

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
    try:
        return path.is_dir() and ((path / "run.json").exists()
                                  or (path / "trials.csv").exists())
    except OSError:  # a name the OS refuses (an architecture string too long for one)
        return False


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


# trials.csv columns every run has had; later columns (train_seconds, weights) may be absent
# from older runs' files.
_REQUIRED = ("number", "name", "role", "state", "arch", "macs", "params", "val_acc")


def read_trials(run: str | Path) -> list[TrialRecord]:
    """The records of ``trials.csv``.  A damaged file (cut short, foreign columns, values
    of the wrong kind) is refused with the line that is wrong."""
    path = check_run(run) / "trials.csv"
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in _REQUIRED if c not in (reader.fieldnames or ())]
            if missing:
                raise ValueError(f"its header lacks {', '.join(missing)}")
            records = []
            for row in reader:
                if None in row or None in row.values():
                    raise ValueError(f"line {reader.line_num} has "
                                     f"{'too many' if None in row else 'too few'} fields")
                try:
                    records.append(TrialRecord.from_row(row))
                except (KeyError, ValueError) as err:
                    raise ValueError(f"line {reader.line_num}: {err}") from None
    except (OSError, UnicodeDecodeError, csv.Error, ValueError) as err:
        raise MbnasError(f"cannot read {path}: {err} (the file is damaged; rerunning the "
                         "search command rewrites it from study.db)") from None
    return [_relative(r) for r in records]


def _relative(record: TrialRecord) -> TrialRecord:
    """``record`` with its weights named inside the run (older runs stored them absolute)."""
    if not record.checkpoint:
        return record
    return record.replace(checkpoint=weights_entry(record.checkpoint))


def read_best(run: str | Path) -> dict:
    """``best.json``, checked: a damaged or foreign file is refused in one line.  Its
    winner, references and Pareto front come back as records."""
    path = check_run(run) / "best.json"
    if not path.exists():
        raise MbnasError(f"run {str(run)!r} has no best.json yet: let the search finish "
                         "(or rerun the same command to resume it)")
    try:
        return _checked_best(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError) as err:
        what = err.args[0] if isinstance(err, KeyError) and err.args else err
        raise MbnasError(f"cannot read {path}: {what} (the file is damaged; rerunning the "
                         "search command rewrites it)") from None


def _checked_best(data) -> dict:
    """``data`` as best.json must hold it, its rows parsed like trials.csv's; raises
    ValueError, TypeError or KeyError naming what is wrong."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, found {type(data).__name__}")
    budget = data["budget"]  # the MAC limit; None where the budget names other costs only
    budgets = data.get("budgets", {"macs": budget})
    if not isinstance(budgets, dict) or not budgets:
        raise ValueError(f"budgets {budgets!r} is not an object of limits")
    for name, limit in budgets.items():
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0:
            raise ValueError(f"budgets: {name} {limit!r} is not a positive number")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int)
                               or budget < 1):
        raise ValueError(f"budget {budget!r} is not a positive integer")
    out = dict(data, budgets=budgets)
    for key in ("winner", "proxy_winner"):
        out[key] = None if data.get(key) is None else _record(data[key], key)
    for key in ("references", "pareto_front"):
        rows = data.get(key, [])
        if not isinstance(rows, list):
            raise ValueError(f"{key} is not a list")
        out[key] = [_record(r, key) for r in rows]
    for key in ("near_chance", "proxy_noise"):
        if not isinstance(data.get(key, ""), str):
            raise ValueError(f"{key} is not text")
    if data.get("confirmation") is not None:
        _check_confirmation(data["confirmation"])
    out["rivals"] = _checked_rivals(data.get("rivals", []))  # none in runs before issue 20
    return out


def _checked_rivals(rivals) -> list[dict]:
    """best.json's rivals: label, width, MACs and the proxy accuracy where trained."""
    if not isinstance(rivals, list):
        raise ValueError("rivals is not a list")
    for r in rivals:
        if not isinstance(r, dict) or not isinstance(r.get("label"), str):
            raise ValueError("rivals: an entry has no label")
        for key in ("width", "macs"):
            if isinstance(r.get(key), bool) or not isinstance(r.get(key), (int, float)):
                raise ValueError(f"rivals: {r['label']}: {key} is not a number")
        acc = r.get("proxy_val_acc")
        if acc is not None and (isinstance(acc, bool) or not isinstance(acc, (int, float))):
            raise ValueError(f"rivals: {r['label']}: proxy_val_acc is not a number")
        if not isinstance(r.get("trained_as") or "", str):
            raise ValueError(f"rivals: {r['label']}: trained_as is not text")
    return rivals


def _record(row, where: str) -> TrialRecord:
    if not isinstance(row, dict):
        raise ValueError(f"{where} is not an object")
    try:
        record = TrialRecord.from_row(row)
    except (KeyError, ValueError, TypeError) as err:
        raise ValueError(f"{where}: {err}") from None
    if not record.arch:
        raise ValueError(f"{where} has no arch")
    return _relative(record)


def _check_confirmation(confirmation) -> None:
    if not isinstance(confirmation, dict):
        raise ValueError("confirmation is not an object")
    protocol, rows, verdict = (confirmation["protocol"], confirmation["rows"],
                               confirmation["verdict"])
    if not isinstance(protocol, dict) or not all(isinstance(protocol.get(k), int)
                                                 for k in ("epochs", "seeds")):
        raise ValueError("confirmation.protocol has no epochs or seeds")
    if not isinstance(rows, list) or not isinstance(verdict, dict) \
            or not isinstance(verdict.get("text"), str):
        raise ValueError("confirmation has no rows or verdict")
    for row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("label"), str) \
                or not isinstance(row.get("seeds"), int) or not all(
                    isinstance(row.get(k), (int, float)) and not isinstance(row.get(k), bool)
                    for k in ("mean", "spread", "proxy_val_acc", "macs", "params")):
            raise ValueError("confirmation.rows holds a row without its label, figures or "
                             "seed count")


def pick_trial(run: str | Path, which: str = "best") -> TrialRecord:
    """A trial by ``best``, its number, or a reference's name, with a clear error."""
    rows = read_trials(run)
    if which == "best":
        winner = read_best(run).get("winner")
        if not winner:
            raise MbnasError(f"run {str(run)!r} has no winner: no search trial finished "
                             "within budget")
        which = winner.label
    for row in rows:
        if (which.isdigit() and row.number == int(which)) or (row.name and row.name == which):
            if not row.complete:
                why = f": {row.error}" if row.error else ""
                raise MbnasError(f"trial {which} of {str(run)!r} is {row.state}{why}; "
                                 f"export a completed one: {_completed(rows)}")
            return row
    raise MbnasError(f"run {str(run)!r} has no trial {which!r}; completed trials: "
                     f"{_completed(rows)}")


def _completed(rows: list[TrialRecord]) -> str:
    done = [r.label for r in rows if r.complete]
    return ", ".join(done) if done else "none"
