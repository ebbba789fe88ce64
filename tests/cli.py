"""Run the real ``mbnas`` command in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def env(base: dict | None = None) -> dict:
    """``base`` (default: this process's environment) with this checkout first on
    PYTHONPATH, so a subprocess (and the Ray workers it starts) imports the mbnas under
    test, not another installed copy."""
    base = dict(os.environ if base is None else base)
    paths = [str(ROOT), *filter(None, base.get("PYTHONPATH", "").split(os.pathsep))]
    base["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return base


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "mbnas", *args]


def run(*args: str, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    kwargs["env"] = env(kwargs.get("env"))
    return subprocess.run(command(*args), capture_output=True, text=True, timeout=timeout,
                          **kwargs)


def assert_usage_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    """Exit 2, exactly one line on stderr naming the problem, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder``: relative path -> sha256 of its bytes
    (``"folder"`` for a folder), to show that a command changed nothing there."""
    import hashlib

    return {str(p.relative_to(folder)): "folder" if p.is_dir()
            else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*"))}
