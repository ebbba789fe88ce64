"""Seed statistics shared by the confirmation and the fidelity study (torch-free)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def pooled_std(groups: Sequence[Sequence[float]]) -> float:
    """The seed-to-seed standard deviation pooled over architectures (each with its own
    mean): sqrt(sum of squared deviations / sum of (n - 1)); NaNs are skipped."""
    ss = dof = 0.0
    for values in groups:
        values = [v for v in values if v == v]
        if len(values) > 1:
            mean = statistics.fmean(values)
            ss += sum((v - mean) ** 2 for v in values)
            dof += len(values) - 1
    return math.sqrt(ss / dof) if dof else math.nan
