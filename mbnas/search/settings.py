"""What a search is asked to do: :class:`SearchSettings`, validated before anything runs.

Torch-, Optuna- and Ray-free, so the command line can build its parser and check its
input without importing them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from mbnas.arch.spec import NUM_CLASSES
from mbnas.costs import Budget, metric
from mbnas.errors import MbnasError
from mbnas.search.confirm import NOISE, ConfirmSettings
from mbnas.training.protocol import SEARCH_SUBSET, Protocol
from mbnas.units import format_count, parse_count

OBJECTIVES = ("accuracy", "pareto")
SAMPLERS = ("tpe", "random", "nsga2")
# Where the sampler's first trials come from (mbnas.search.study): random members of the
# space, or the seed candidates with a few choices drawn again (their neighbourhood).
STARTUPS = ("random", "near-seeds")
KEEP_WEIGHTS = "best:5"  # plus the seed candidates and the references: see keep_best()
# Bounds no real search comes near, so that a typo is refused rather than run: the
# costliest MobileNet of the papers' grids (V2 1.4 at 224 px) is 582M MACs.
MAX_BUDGET = 100 * 10**9
MAX_TRIALS = 10_000  # each trains a network: the default 10 take ~9 minutes on 2 cores
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class SearchSettings:
    budget: int | Budget  # MACs, or limits by any registered metrics (mbnas.costs)
    name: str = ""
    space: str | None = None
    # The quick start aims at 20 minutes on 2 cores: 20 trials on 3,000 images (the search
    # protocol's default subset) and the confirmation of the winner beside the three
    # rivals took 18 min 52 s, the trials 9 min 21 s of it (bench/quickstart/twenty-trials/);
    # 10 trials on 6,000 images had taken 9 min 36 s.
    trials: int = 20
    objective: str = "accuracy"
    sampler: str = "tpe"
    startup: str = "random"
    resolution: int | None = None
    num_classes: int = NUM_CLASSES
    protocol: Protocol = field(default_factory=lambda: Protocol(subset=SEARCH_SUBSET))
    concurrency: int = 1
    cpus_per_trial: float | None = None
    gpus_per_trial: float | None = None
    address: str | None = None
    # ASHA on the default 3-epoch proxy lost the full proxy's winner in a third of replayed
    # searches and crowned worse candidates even at equal training time
    # (bench/fidelity/early_stopping.py): off unless asked for.
    early_stopping: bool = False
    runs_dir: Path = Path("runs")
    faults: dict[int, str] = field(default_factory=dict)
    # None: the rivals scaled to the budget (mbnas.search.rivals) that are not seed
    # candidates already (mbnas.search.run.reference_archs); named: those seeds at width
    # 1.0, whatever they cost.
    references: tuple[str, ...] | None = None
    keep_weights: str = KEEP_WEIGHTS
    confirm: ConfirmSettings = field(default_factory=ConfirmSettings)
    noise: float = NOISE  # the protocol's seed spread, for the near-chance test
    pareto_metric: str = "macs"  # what --objective pareto trades accuracy against
    latency_table: str | None = None  # its metric is registered (mbnas.latency.metric)

    def __post_init__(self) -> None:
        for what, value, allowed in (("objective", self.objective, OBJECTIVES),
                                     ("sampler", self.sampler, SAMPLERS),
                                     ("startup", self.startup, STARTUPS)):
            if value not in allowed:
                raise MbnasError(f"{what}: {value!r} is not allowed; choose one of "
                                 f"{', '.join(allowed)}")
        if self.trials < 1:
            raise MbnasError(f"--trials: {self.trials} must be at least 1")
        if self.trials > MAX_TRIALS:
            raise MbnasError(f"--trials: {self.trials:,} is more than {MAX_TRIALS:,}, the most "
                             "allowed (each trial trains a network)")
        macs = self.limits.limit("macs")
        if macs is not None and macs > MAX_BUDGET:
            raise MbnasError(f"--budget: {macs:.3g} MACs is more than "
                             f"{format_count(MAX_BUDGET, 0)}, the most allowed (MobileNetV2 1.4 "
                             "at 224 px costs 582M)")
        metric(self.pareto_metric)  # known
        if self.concurrency < 1:
            raise MbnasError(f"--concurrency: {self.concurrency} must be at least 1")
        keep_best(self.keep_weights)

    @property
    def limits(self) -> Budget:
        """The budget as limits by metric (a number is a MAC budget)."""
        return self.budget if isinstance(self.budget, Budget) else Budget.of(macs=self.budget)

    @property
    def recorded(self) -> tuple[str, ...]:
        """The metrics every candidate is priced by and recorded with, besides MACs and
        parameters: the budget's, the Pareto objective's, latency where a table is given."""
        names = [n for n, _ in self.limits.limits] + [self.pareto_metric]
        if self.latency_table:
            names.append("latency")
        return tuple(dict.fromkeys(n for n in names if n not in ("macs", "params")))

    @property
    def macs_budget(self) -> int | None:
        """The MAC limit, where the budget has one."""
        macs = self.limits.limit("macs")
        return None if macs is None else int(macs)

    @property
    def run_name(self) -> str:
        if self.name:
            return self.name
        parts = []
        for name, limit in self.limits.limits:
            if name == "macs":
                parts.append(_macs_name(int(limit)))
            else:
                parts.append(metric(name).format(limit).replace(" ", ""))
        return "search-" + "-".join(parts)

    @property
    def run_dir(self) -> Path:
        return self.runs_dir / self.run_name


def _macs_name(budget: int) -> str:
    """``300M``; a budget no short form gives back exactly, in full."""
    if budget % 10**6:
        return str(budget)
    short = format_count(budget, 0)
    if parse_count(short) != budget:  # 1.5G must not be named (and resumed) as 2G
        short = f"{budget // 10**6}M"
    return short


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise MbnasError(f"run name {name!r} is not allowed; use letters, digits, '.', '_' "
                         "and '-' (up to 64, starting with a letter or digit)")
    return name


def keep_best(policy: str) -> int | None:
    """How many of the most accurate completed search trials keep their weights:
    ``all`` (None: every trial), ``none`` (0: no trial, no reference) or ``best:K``.
    Under ``best:K`` the seed candidates, the references and, with ``--objective
    pareto``, the Pareto front keep theirs too."""
    if policy == "all":
        return None
    if policy == "none":
        return 0
    kind, _, k = policy.partition(":")
    if kind == "best" and k.isdigit() and int(k) >= 1:
        return int(k)
    raise MbnasError(f"--keep-weights: {policy!r} is not allowed; write all, none or best:K "
                     "with K at least 1 (e.g. best:5)")
