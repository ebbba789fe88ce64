import sys
from pathlib import Path

import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent))

# Deterministic in CI: the same examples every run, no flaky deadline failures.
settings.register_profile("mbnas", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("mbnas")


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Path:
    """A real run folder as ``mbnas search --budget 6M`` leaves it (``runs/search-6M``:
    run.json, study.db, weights/, ray/, trials.csv, best.json): three trials of the tiny
    space, the first of which raises, under ASHA.  Tests must not change it."""
    from cli import run
    from test_search_e2e import search_args

    runs = tmp_path_factory.mktemp("finished") / "runs"
    result = run(*search_args(runs, "search-6M", 3, "--references", "none",
                              "--inject-faults", "1:raise", "--early-stopping"))
    assert result.returncode == 0, result.stderr[-3000:]
    folder = runs / "search-6M"
    assert (folder / "study.db").is_file() and any((folder / "weights").iterdir())
    assert any((folder / "ray").iterdir())
    return folder
