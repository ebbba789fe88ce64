import sys
from pathlib import Path

from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent))

# Deterministic in CI: the same examples every run, no flaky deadline failures.
settings.register_profile("mbnas", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("mbnas")
