"""The one module that touches Optuna: a run's studies, kept in SQLite.

A run holds three studies in ``study.db``: ``search`` (the candidates, sampled
from the space, asked and told here), ``references`` (canonical V1, V2 and V3-Large,
trained under the same protocol but outside the search: they never steer the
sampler and are never the winner) and ``confirmation`` (the confirmation's retrainings).

Budgets: every sample is priced before anything trains.  One over budget is told
to Optuna as an infeasible, pruned trial (``Trial.set_constraint``), so TPE and
NSGA-II learn where the budget bites, and its repaired neighbour
(:meth:`SearchSpace.repair`) is enqueued and trained instead.  An ask therefore
costs at most two samples: sampling never loops.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

from mbnas.arch.cost import count
from mbnas.arch.encoding import decode, encode, network_key
from mbnas.arch.seeds import with_overrides
from mbnas.arch.spec import NUM_CLASSES, Arch
from mbnas.costs import Budget, metric, metrics
from mbnas.errors import MbnasError
from mbnas.outcome import (
    Exhausted,
    Role,
    Status,
    TrialRecord,
    pareto_front,
    parse_role,
    role_text,
    trial_key,
)
from mbnas.search.runs import weights_entry
from mbnas.search.settings import OBJECTIVES, SAMPLERS, STARTUPS
from mbnas.search.space import SearchSpace

SEARCH, REFERENCES, CONFIRMATION = "search", "references", "confirmation"
CONSTRAINT = "{}_over_budget"  # one per metric of the budget: macs_over_budget
# Asks answered in a row from earlier trials before the space counts as exhausted.
MAX_REPEATS = 20

WEIGHTS_DROPPED = "weights_dropped"  # search study attr: {trial key: why not kept}

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


@dataclass(frozen=True)
class Candidate:
    """One architecture to train: its study trial number, spec, price and role."""

    number: int  # the search study's trial number; negative for references
    arch: Arch
    macs: int
    params: int
    role: Role
    name: str = ""  # references: the seed's name; confirmations: the entry and seed
    protocol: dict | None = None  # a protocol of its own (confirmations), else the run's
    origin: int | None = None  # a repair's or rerun's trial
    seed: str = ""  # a seed candidate's name and width

    @property
    def role_text(self) -> str:
        return role_text(self.role, self.origin, self.seed)

    @property
    def key(self) -> str:
        """A file-name-safe id: ``trial-7`` or ``reference-mobilenet_v2``."""
        return trial_key(self.role, self.number, self.name)


# TPE's first trials, the seeds among them, are its startup: drawn without its model.
STARTUP_TRIALS = 8
# ``--startup near-seeds``: how many of a seed's choices each startup trial draws again.
NEAR_CHANGES = 2
NEAR_DRAWS = 50  # draws of a neighbour before one over budget is left to the repair


def _sampler(name: str, seed: int | None, objective: str) -> optuna.samplers.BaseSampler:
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=8)
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
                                      constant_liar=True, n_startup_trials=STARTUP_TRIALS)


class RunStudy:
    """The search and reference studies of one run."""

    def __init__(self, db: Path, space: SearchSpace, *, budget: int | Budget,
                 objective: str = "accuracy",
                 sampler: str = "tpe", seed: int | None = 0, resolution: int | None = None,
                 num_classes: int = NUM_CLASSES, pareto_metric: str = "macs",
                 recorded: tuple[str, ...] = (), startup: str = "random") -> None:
        if objective not in OBJECTIVES:
            raise MbnasError(f"objective: {objective!r} is not allowed; choose one of "
                             f"{', '.join(OBJECTIVES)}")
        if sampler not in SAMPLERS:
            raise MbnasError(f"sampler: {sampler!r} is not allowed; choose one of "
                             f"{', '.join(SAMPLERS)}")
        if startup not in STARTUPS:
            raise MbnasError(f"startup: {startup!r} is not allowed; choose one of "
                             f"{', '.join(STARTUPS)}")
        self.space, self.objective = space, objective
        self.startup, self.seed = startup, seed or 0
        self.pareto_metric = metric(pareto_metric)  # what --objective pareto trades off
        # The limits; ``budget`` is the MAC limit where there is one (what best.json names).
        self.limits = budget if isinstance(budget, Budget) else Budget.of(macs=budget)
        macs = self.limits.limit("macs")
        self.budget = None if macs is None else int(macs)
        # Every candidate is priced by these and records them (besides MACs and params).
        self.recorded = tuple(dict.fromkeys(
            [*(m.name for m in self.limits.metrics), self.pareto_metric.name, *recorded]))
        self.resolution, self.num_classes = resolution, num_classes
        storage = optuna.storages.RDBStorage(
            f"sqlite:///{db}", engine_kwargs={"connect_args": {"timeout": 60}})
        directions = ["maximize", "minimize"] if objective == "pareto" else ["maximize"]
        self.study = optuna.create_study(study_name=SEARCH, storage=storage,
                                         load_if_exists=True, directions=directions,
                                         sampler=_sampler(sampler, seed, objective))
        # A sampler rebuilt with the run's seed would replay its first samples on resume:
        # a resumed run continues with a seed offset by the trials already asked.
        asked = len(self.study.get_trials(deepcopy=False))
        if asked and seed is not None:
            self.study.sampler = _sampler(sampler, seed + asked, objective)
        self.references = optuna.create_study(study_name=REFERENCES, storage=storage,
                                              load_if_exists=True, direction="maximize")
        self.confirmation = optuna.create_study(study_name=CONFIRMATION, storage=storage,
                                                load_if_exists=True, direction="maximize")
        self._live: dict[int, optuna.Trial] = {}

    # --- pricing ----------------------------------------------------------------

    def target(self, params: dict) -> Arch:
        return self.space.arch(params, resolution=self.resolution, num_classes=self.num_classes)

    def cheapest(self) -> tuple[Arch, int]:
        arch = self.space.cheapest(resolution=self.resolution, num_classes=self.num_classes)
        return arch, count(arch).macs

    # --- the run's life cycle -------------------------------------------------------

    def _trial(self, number: int) -> optuna.Trial:
        """A live handle on trial ``number``, also one asked by an earlier process."""
        if number in self._live:
            return self._live[number]
        # Optuna has no public lookup of a trial handle by number.
        trial_id = self.study._storage.get_trial_id_from_study_id_trial_number(
            self.study._study_id, number)
        return optuna.Trial(self.study, trial_id)

    def recover_interrupted(self) -> list[int]:
        """Trials left RUNNING by a killed driver: mark them failed, queue them again."""
        stale = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        for t in stale:
            self._trial(t.number).set_user_attr(
                "error", "interrupted: the search process stopped while this trial ran")
            self._trial(t.number).set_user_attr("status", Status.INTERRUPTED.value)
            self.study.tell(t.number, state=TrialState.FAIL)
            if not t.user_attrs.get("over_budget"):
                self.study.enqueue_trial(
                    t.params, user_attrs={"role": role_text(Role.RERUN, t.number)},
                    skip_if_exists=False)
        return [t.number for t in stale]

    def enqueue_seeds(self) -> list[str]:
        """Once per run: each space seed scaled to the budget (:mod:`mbnas.search.rivals`),
        at the largest width that fits where the run's space holds it (a run adds it:
        :meth:`SearchSpace.with_widths`), else at the widest of the space's widths that
        fits."""
        from mbnas.search.rivals import scaled_seeds

        if self.study.user_attrs.get("seeds_enqueued"):
            return []
        scaled = dict(scaled_seeds(self.space, self.limits, resolution=self.resolution,
                                   num_classes=self.num_classes))
        queued = []
        for name, text in self.space.seeds:
            base = decode(text)
            widths = sorted(self.space.width, reverse=True)
            if name in scaled and scaled[name].width in self.space.width:
                widths = [scaled[name].width]
            for width in widths:
                params = self.space.params_of(with_overrides(base, width=width))
                if self.limits.fits(self.target(params)):
                    role = role_text(Role.SEED, seed=f"{name} x{width:g}")
                    self.study.enqueue_trial(params, user_attrs={"role": role})
                    queued.append(role)
                    break
        self.study.set_user_attr("seeds_enqueued", True)
        return queued

    def counted(self) -> int:
        """Trials that count toward ``--trials``: trained to the end, stopped or failed
        for a reason of their own (not over-budget samples, repeats or interrupted ones)."""
        return sum(status_of(t).counted for t in self.study.get_trials(deepcopy=False))

    def ask(self) -> Candidate:
        """The next candidate within budget that this run has not trained yet.

        An architecture trained before (sampled again, or enqueued) is answered from that
        trial's result, untrained, as a ``repeat`` (Optuna learns the same value), and the
        sampler is asked again; after :data:`MAX_REPEATS` such answers in a row the space
        counts as exhausted (:class:`Exhausted`).
        """
        for _ in range(MAX_REPEATS):
            trial, arch, cost = self._within_budget()
            original = self._trained(trial.user_attrs["arch"], trial.number)
            if original is None:
                if "role" not in trial.user_attrs:
                    trial.set_user_attr("role", Role.SEARCH.value)
                role, origin, seed = parse_role(trial.user_attrs["role"])
                self._live[trial.number] = trial
                return Candidate(trial.number, arch, cost.macs, cost.params, role,
                                 origin=origin, seed=seed)
            self._answer_repeat(trial, original)
        raise Exhausted(f"the sampler proposed only architectures this run has trained "
                        f"({MAX_REPEATS} in a row): the space looks exhausted")

    def _within_budget(self):
        """One trial within budget (at most two samples, see the module doc)."""
        trial, arch, cost = self._sample()
        if not self.limits.fits(arch):
            repaired = self.space.repair(trial.params, self.limits, resolution=self.resolution,
                                         num_classes=self.num_classes)
            trial.set_user_attr("over_budget", True)
            trial.set_user_attr("status", Status.OVER_BUDGET.value)
            self.study.enqueue_trial(
                repaired, user_attrs={"role": role_text(Role.REPAIR, trial.number)})
            self.study.tell(trial, state=TrialState.PRUNED)
            trial, arch, cost = self._sample()
            if not self.limits.fits(arch):  # cannot happen: repair() guarantees the fit
                raise RuntimeError(f"repaired trial #{trial.number} is over budget")
        return trial, arch, cost

    def _trained(self, encoding: str, number: int) -> optuna.trial.FrozenTrial | None:
        """The trial of this run that trains or trained the network ``encoding`` builds (not
        ``number``): two specs that resolve to one network (``c8`` and ``c16`` at width 0.5
        both round to 8 channels) are one architecture."""
        network = network_key(encoding)
        for t in self.study.get_trials(deepcopy=False):
            if t.number == number or "arch" not in t.user_attrs \
                    or network_key(t.user_attrs["arch"]) != network:
                continue
            status = t.user_attrs.get("status")
            if status in (Status.OVER_BUDGET, Status.INTERRUPTED, Status.REPEAT):
                continue
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL) \
                    or (t.state == TrialState.RUNNING and t.number in self._live):
                return t
        return None

    def _answer_repeat(self, trial: optuna.Trial, original) -> None:
        # Its accuracy and weights are the original's, read from it (rows()): the original
        # may still be training.
        attrs = {"role": role_text(Role.REPEAT, original.number), "repeat_of": original.number,
                 "status": Status.REPEAT.value, "epochs": 0, "seconds": 0.0}
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        if original.state == TrialState.COMPLETE:
            self.study.tell(trial, original.values)
        else:  # stopped, failed or still running: nothing new to learn
            self.study.tell(trial, state=TrialState.PRUNED)

    def _sample(self):
        """Ask Optuna for one trial, build its spec, and record its price and constraint."""
        if self.startup == "near-seeds":
            self._enqueue_near_seed()
        trial = self.study.ask()
        arch = self.target(self.space.sample(trial.suggest_categorical))
        cost = count(arch)
        trial.set_user_attr("arch", encode(arch))
        trial.set_user_attr("macs", cost.macs)
        trial.set_user_attr("params", cost.params)
        for name in self.recorded:
            if name not in ("macs", "params"):
                trial.set_user_attr(metric(name).field, metric(name).price(arch))
        for name, over in self.limits.over(arch).items():
            trial.set_constraint(CONSTRAINT.format(name), float(over))
        return trial, arch, cost

    def _enqueue_near_seed(self) -> None:
        """``--startup near-seeds``: while the study is in its startup (its first
        :data:`STARTUP_TRIALS` trials, the seeds among them) and nothing is queued, queue a
        seed candidate (each in turn) with :data:`NEAR_CHANGES` of its choices drawn again
        (until it fits the budget, up to :data:`NEAR_DRAWS` draws), so that the sampler's
        model starts from the rivals' neighbourhood instead of the whole space.  Drawn from
        the run's seed and the trial count: the same command proposes the same trials."""
        import random

        trials = self.study.get_trials(deepcopy=False)
        asked = [t for t in trials if not t.user_attrs.get("over_budget")
                 and t.user_attrs.get("status") != Status.REPEAT]
        if len(asked) >= STARTUP_TRIALS or any(t.state == TrialState.WAITING for t in trials):
            return
        seeds = [t for t in trials if t.distributions and "role" in t.user_attrs
                 and parse_role(t.user_attrs["role"])[0] is Role.SEED]
        if not seeds:
            return
        rng = random.Random(f"{self.seed}:{len(trials)}")
        seed = seeds[len(asked) % len(seeds)]
        base = seed.params
        for _ in range(NEAR_DRAWS):  # a neighbour within budget, if one is drawn
            changed = set(rng.sample(sorted(base), min(NEAR_CHANGES, len(base))))

            def pick(name, choices, changed=changed):
                if name in base and name not in changed:
                    return base[name]
                return rng.choice([c for c in choices if c != base.get(name)] or list(choices))

            params = self.space.sample(pick)
            if self.limits.fits(self.target(params)):
                break
        self.study.enqueue_trial(params, user_attrs={"near": seed.user_attrs["role"]},
                                 skip_if_exists=False)

    def report(self, number: int, val_acc: float, epoch: int) -> None:
        """An epoch's validation accuracy (single objective only: Optuna cannot take
        intermediate values of multi-objective trials)."""
        trial = self._live.get(number)
        if trial is not None and self.objective == "accuracy":
            trial.report(val_acc, epoch)

    def running(self, number: int, *, attempts: list[dict]) -> None:
        """Where a running trial runs: one ``{node, pid, from_epoch}`` per worker it ran
        on (more than one: Ray retried it after losing a worker or a node)."""
        trial = self._live.get(number)
        if trial is not None:
            trial.set_user_attr("attempts", attempts)

    def tell(self, number: int, *, status: str, val_acc: float = 0.0, epochs: int = 0,
             seconds: float = 0.0, error: str = "", checkpoint: str = "",
             train_seconds: float = 0.0, node: str = "",
             attempts: list[dict] | None = None) -> None:
        """Record a finished trial: ``status`` is complete, stopped, diverged or failed.
        ``seconds`` is the trial's wall time seen by the driver, ``train_seconds`` the
        part spent in training and validation epochs."""
        trial = self._trial(number)
        self._live.pop(number, None)
        attrs = {"status": status, "val_acc": val_acc, "epochs": epochs, "seconds": seconds,
                 "train_seconds": train_seconds, "error": error, "checkpoint": checkpoint,
                 "node": node}
        if attempts:
            attrs["attempts"] = attempts
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        if status == Status.COMPLETE:
            cost = trial.user_attrs.get(self.pareto_metric.field)
            if self.pareto_metric.name == "macs":
                cost = cost / 1e6  # what runs have told Optuna since the first
            values = [val_acc, cost] if self.objective == "pareto" else val_acc
            self.study.tell(trial, values)
        elif status == Status.STOPPED:
            self.study.tell(trial, state=TrialState.PRUNED)
        else:
            self.study.tell(trial, state=TrialState.FAIL)

    # --- weights kept -------------------------------------------------------------

    def drop_weights(self, keys: list[str], reason: str) -> None:
        """Record that the weights of trials ``keys`` (``trial-7``, ``reference-NAME``)
        are no longer kept, and why; the caller deletes the files afterwards."""
        dropped = dict(self.study.user_attrs.get(WEIGHTS_DROPPED, {}))
        dropped.update(dict.fromkeys(keys, reason))
        self.study.set_user_attr(WEIGHTS_DROPPED, dropped)

    # --- references ---------------------------------------------------------------

    def reference_done(self, name: str) -> bool:
        return any(t.user_attrs.get("name") == name and t.state == TrialState.COMPLETE
                   for t in self.references.get_trials(deepcopy=False))

    def add_reference(self, name: str, arch: Arch, *, status: str, val_acc: float,
                      epochs: int, seconds: float, error: str = "", checkpoint: str = "",
                      train_seconds: float = 0.0) -> None:
        cost = count(arch)
        attrs = {"name": name, "arch": encode(arch), "macs": cost.macs, "params": cost.params,
                 "status": status, "val_acc": val_acc, "epochs": epochs, "seconds": seconds,
                 "train_seconds": train_seconds, "error": error, "checkpoint": checkpoint,
                 "role": Role.REFERENCE.value}
        ok = status == Status.COMPLETE
        self.references.add_trial(optuna.trial.create_trial(
            state=TrialState.COMPLETE if ok else TrialState.FAIL,
            value=val_acc if ok else None, user_attrs=attrs))

    def reference_source(self, archs: dict[str, Arch]) -> References:
        """The references still to train, as a source for the Ray searcher."""
        todo = {n: a for n, a in archs.items() if not self.reference_done(n)}
        return References(self, todo)

    # --- results ------------------------------------------------------------------

    def rows(self) -> list[TrialRecord]:
        """One record per trial, references first: what ``trials.csv`` holds."""
        dropped = self.study.user_attrs.get(WEIGHTS_DROPPED, {})
        refs = [_record(t, number=None, name=t.user_attrs.get("name", ""), dropped=dropped)
                for t in self.references.get_trials(deepcopy=False)]
        search = {t.number: _record(t, number=t.number, name="", dropped=dropped)
                  for t in self.study.get_trials(deepcopy=False)}
        for number, record in search.items():
            if record.state is Status.REPEAT:  # answered from its original, untrained
                original = search[record.origin]
                search[number] = record.replace(val_acc=original.val_acc,
                                                checkpoint=original.checkpoint,
                                                weights=original.weights)
        return refs + list(search.values())

    def winner(self) -> TrialRecord | None:
        """The most accurate search trial trained to the end within budget (fewer MACs
        break ties); never a reference."""
        done = [r for r in self.rows() if not r.is_reference and r.complete
                and all(r.cost(n) <= limit for n, limit in self.limits.limits)]
        return max(done, key=lambda r: (r.val_acc, -r.macs), default=None)

    def pareto_front(self) -> list[TrialRecord]:
        """Completed search trials not beaten on both accuracy and cost (the Pareto
        objective's metric) by another."""
        return pareto_front([r for r in self.rows() if not r.is_reference],
                            self.pareto_metric.name)


class FixedList:
    """A fixed list of trainings as a source for the Ray searcher (:class:`RunStudy` is the
    other kind, asked by the sampler): ``ask`` pops the next, ``tell`` records one
    (subclasses), epochs are not reported (nothing stops a fixed training early)."""

    def __init__(self, run: RunStudy, todo: list[Candidate]) -> None:
        self.run, self.todo = run, todo
        self.by_number = {c.number: c for c in todo}

    def __len__(self) -> int:
        return len(self.todo)

    def ask(self) -> Candidate:
        return self.todo.pop(0)

    def report(self, number: int, val_acc: float, epoch: int) -> None:
        pass

    def running(self, number: int, *, attempts: list[dict]) -> None:
        pass


class References(FixedList):
    """Canonical networks trained beside the search, recorded in the references study."""

    def __init__(self, run: RunStudy, archs: dict[str, Arch]) -> None:
        super().__init__(run, [Candidate(-(i + 1), a, count(a).macs, count(a).params,
                                         Role.REFERENCE, n)
                               for i, (n, a) in enumerate(archs.items())])

    def tell(self, number: int, *, status: str, val_acc: float = 0.0, epochs: int = 0,
             seconds: float = 0.0, error: str = "", checkpoint: str = "",
             train_seconds: float = 0.0, node: str = "",
             attempts: list[dict] | None = None) -> None:
        c = self.by_number[number]
        self.run.add_reference(c.name, c.arch, status=status, val_acc=val_acc, epochs=epochs,
                               seconds=seconds, error=error, checkpoint=checkpoint,
                               train_seconds=train_seconds)


_STATES = {TrialState.COMPLETE: Status.COMPLETE, TrialState.PRUNED: Status.STOPPED,
           TrialState.FAIL: Status.FAILED, TrialState.RUNNING: Status.RUNNING,
           TrialState.WAITING: Status.QUEUED}


def status_of(t: optuna.trial.FrozenTrial) -> Status:
    """What a stored trial came to (runs made before statuses were stored included)."""
    a = t.user_attrs
    if a.get("over_budget"):
        return Status.OVER_BUDGET
    if t.state in (TrialState.RUNNING, TrialState.WAITING):
        return _STATES[t.state]
    if "status" in a:
        return Status(a["status"])
    if t.state == TrialState.FAIL and str(a.get("error", "")).startswith("interrupted"):
        return Status.INTERRUPTED
    return _STATES[t.state]


def _record(t: optuna.trial.FrozenTrial, *, number: int | None, name: str,
            dropped: dict) -> TrialRecord:
    """The stored trial as a record; ``dropped``: why weights are no longer kept, by key."""
    a = t.user_attrs
    role, origin, seed = parse_role(a.get("role", Role.SEARCH.value))
    if role is Role.REPEAT and "repeat_of" in a:
        origin = a["repeat_of"]
    val_acc = a.get("val_acc")
    why = dropped.get(trial_key(role, number, name))
    costs = tuple((m.field, float(a[m.field])) for m in metrics()
                  if m.name not in ("macs", "params") and m.field in a)
    return TrialRecord(costs=costs,
        number=number, name=name, role=role, origin=origin, seed=seed, state=status_of(t),
        arch=a.get("arch", ""), macs=a.get("macs", 0), params=a.get("params", 0),
        val_acc=float(val_acc) if val_acc is not None else math.nan,
        epochs=a.get("epochs", 0), seconds=round(float(a.get("seconds", 0.0)), 2),
        train_seconds=round(float(a.get("train_seconds", 0.0)), 2), error=a.get("error", ""),
        checkpoint="" if why or not a.get("checkpoint") else weights_entry(a["checkpoint"]),
        weights=why or ("kept" if a.get("checkpoint") else ""))


class Confirmations(FixedList):
    """The confirmation's trainings (an entry at a seed each), recorded in the run's
    ``confirmation`` study: a resumed run trains only those not recorded yet."""

    def __init__(self, run: RunStudy, todo: list[tuple[str, int, Arch, dict]]) -> None:
        done = self.results(run, complete_only=False)
        super().__init__(run, [Candidate(-(i + 1), arch, count(arch).macs, count(arch).params,
                                         Role.CONFIRMATION, f"{key}-seed{seed_index}",
                                         protocol)
                               for i, (key, seed_index, arch, protocol) in enumerate(
                                   t for t in todo if (t[0], t[1]) not in done)])

    def tell(self, number: int, *, status: str, val_acc: float = 0.0, epochs: int = 0,
             seconds: float = 0.0, error: str = "", train_seconds: float = 0.0,
             **_) -> None:
        c = self.by_number[number]
        key, _, seed_index = c.name.rpartition("-seed")
        ok = status == Status.COMPLETE
        attrs = {"entry": key, "seed_index": int(seed_index), "arch": encode(c.arch),
                 "status": str(status), "val_acc": val_acc, "epochs": epochs,
                 "seconds": seconds, "train_seconds": train_seconds, "error": error}
        self.run.confirmation.add_trial(optuna.trial.create_trial(
            state=TrialState.COMPLETE if ok else TrialState.FAIL,
            value=val_acc if ok else None, user_attrs=attrs))

    @staticmethod
    def results(run: RunStudy, *, complete_only: bool = True) -> dict:
        """``{(entry key, seed index): val_acc}`` of the recorded trainings (failed ones
        too unless ``complete_only``: a failure is not retried by a resume)."""
        return {(t.user_attrs["entry"], t.user_attrs["seed_index"]): t.value
                for t in run.confirmation.get_trials(deepcopy=False)
                if t.state == TrialState.COMPLETE or not complete_only}
