"""Run the real ``mbnas`` command in a subprocess, as a user would."""

from __future__ import annotations

import subprocess
import sys


def run(*args: str, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mbnas", *args], capture_output=True,
                          text=True, timeout=timeout, **kwargs)


def assert_usage_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    """Exit 2, exactly one line on stderr naming the problem, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
