"""Seed statistics shared by the confirmation and the fidelity study (torch-free)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


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


def tau_ceiling(means: Sequence[float], noise: Sequence[float], *, draws: int = 4000,
                seed: int = 0) -> tuple[float, float, float]:
    """How far a measurement with seed noise can agree with the truth it measures.

    Takes ``means`` as the truth and draws ``means + N(0, noise**2)`` (``noise``: the
    standard deviation of each mean, e.g. the seed spread over sqrt(its seeds)); returns
    Kendall's tau between the truth and a draw: the mean over draws, and the 5th and 95th
    percentiles.  A proxy that ranked every architecture exactly right would agree with
    the noisy measurement this well, and no better.  Optimistic: the observed means carry
    noise of their own, so they spread further apart than the truth does.
    """
    import numpy as np

    truth = np.asarray(means, dtype=float)
    if len(truth) < 2:
        return (math.nan,) * 3
    rng = np.random.default_rng(seed)
    drawn = truth + rng.normal(size=(draws, len(truth))) * np.asarray(noise, dtype=float)
    i, j = np.triu_indices(len(truth), k=1)
    truth_sign = np.sign(truth[i] - truth[j])
    taus = (np.sign(drawn[:, i] - drawn[:, j]) * truth_sign).sum(axis=1) / len(i)
    low, high = np.percentile(taus, [5, 95])
    return float(taus.mean()), float(low), float(high)


def kendall_tau(x: list[float], y: list[float]) -> float:
    """Kendall's tau-b (ties in either list allowed); nan when either list is constant."""
    concordant = discordant = ties_x = ties_y = 0
    n = len(x)
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = x[i] - x[j], y[i] - y[j]
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif (dx > 0) == (dy > 0):
                concordant += 1
            else:
                discordant += 1
    denominator = ((concordant + discordant + ties_x) * (concordant + discordant + ties_y)) ** 0.5
    return (concordant - discordant) / denominator if denominator else float("nan")


@dataclass(frozen=True)
class Spread:
    """Values of one quantity over seeds: mean, sample standard deviation, max - min."""

    mean: float
    std: float  # nan for a single value
    range: float
    n: int


def spread(values: Sequence[float]) -> Spread:
    values = [v for v in values if v == v]
    if not values:
        return Spread(math.nan, math.nan, math.nan, 0)
    std = statistics.stdev(values) if len(values) > 1 else math.nan
    return Spread(statistics.fmean(values), std, max(values) - min(values), len(values))
