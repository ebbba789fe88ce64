"""Writing a file so that a crash never leaves half of it: the one atomic write of mbnas.

The content goes to a temporary file beside the target (same folder, so the same file
system), is flushed to disk, then replaces the target in one ``os.replace``.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path


def temp_path(path: Path) -> Path:
    """A hidden, unique name beside ``path`` (two writers never share one)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str | Path, writer: Callable[[Path], object]) -> Path:
    """``writer(temp)`` writes the content; then it replaces ``path`` at once."""
    path = Path(path)
    temp = temp_path(path)
    try:
        writer(temp)
        fsync(temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path


def write_text(path: str | Path, text: str) -> Path:
    return write_atomic(path, lambda temp: temp.write_text(text, encoding="utf-8"))


def write_json(path: str | Path, data) -> Path:
    return write_text(path, json.dumps(data, indent=2) + "\n")


def write_csv(path: str | Path, rows, fieldnames, header: str = "") -> Path:
    """``rows`` (dicts) under a header line of ``fieldnames``, after ``header`` text."""
    import csv

    def write(temp: Path) -> None:
        with temp.open("w", newline="") as f:
            f.write(header)
            writer = csv.DictWriter(f, fieldnames=fieldnames)
            writer.writeheader()
            writer.writerows(rows)

    return write_atomic(path, write)
