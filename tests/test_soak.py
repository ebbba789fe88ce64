"""The short version of the soak (``bench/soak.py``): a search of 16 trials, two at a
time and in two Tune runs of 8, keeps its records consistent, loses no trial and stays
within its disk bound."""

import subprocess
import sys

import pytest
from cli import ROOT, env

pytestmark = pytest.mark.slow


def test_a_short_soak(tmp_path):
    soak = [str(ROOT / "bench" / "soak.py"), "--trials", "16", "--trials-per-tune-run", "8",
            "--keep-best", "3", "--out", str(tmp_path)]
    out = subprocess.run([sys.executable, *soak], env=env(), capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert "FAIL" not in out.stdout
    assert "ok: study, trials.csv and best.json agree; no trial lost" in out.stdout
    assert len(list((tmp_path / "soak" / "weights").iterdir())) == 3
    assert len(list((tmp_path / "soak" / "ray").glob("search-*"))) == 2  # two Tune runs
