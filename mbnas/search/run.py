"""``mbnas search``: the run folder, its lock, and the three phases of a search.

Phase 1 trains the references (by default the rivals scaled to the budget,
:mod:`mbnas.search.rivals`, that the search does not train as seed candidates) under
the search's protocol, without early stopping; phase 2
runs the search trials; phase 3 confirms the best (:mod:`mbnas.search.confirm`).  All
go through Ray Tune (:mod:`mbnas.search.tune`) and are recorded in the run's Optuna
study (:mod:`mbnas.search.study`), which is what a re-run resumes from.

A run folder ``runs/<name>/`` holds ``run.json`` (the settings), ``study.db``,
``ray/`` (Tune's experiment folders and logs), ``weights/`` (the finished trials'
proxy weights that ``--keep-weights`` keeps), ``trials.csv`` and ``best.json``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from mbnas.arch.cost import count
from mbnas.arch.encoding import encode, network_key
from mbnas.arch.spec import Arch
from mbnas.errors import MbnasError
from mbnas.files import write_csv, write_json
from mbnas.outcome import Role, TrialRecord, columns, pareto_front
from mbnas.search.confirm import (
    entries,
    measured_spread,
    near_chance,
    proxy_noise_note,
    summarize,
    verdict,
)
from mbnas.search.rivals import MIN_WIDTH, canonical, scaled, scaled_seeds
from mbnas.search.runs import weights_path
from mbnas.search.settings import SearchSettings, check_name, keep_best
from mbnas.search.space import SearchSpace, resolve_space
from mbnas.units import format_count


def _weights_kept(rows: list[TrialRecord], policy: str, objective: str,
                  pareto_metric: str = "macs") -> set[str]:
    """The trial keys (``trial-7``, ``reference-NAME``) whose weights ``policy`` keeps."""
    best = keep_best(policy)
    done = [r for r in rows if r.complete and r.checkpoint]
    if best is None:
        return {r.key for r in done}
    if best == 0:
        return set()
    search = [r for r in done if not r.is_reference]
    ranked = sorted(search, key=lambda r: (-r.val_acc, r.macs, r.number))
    keep = {r.key for r in ranked[:best]}
    keep |= {r.key for r in done if r.role in (Role.REFERENCE, Role.SEED)}
    if objective == "pareto":
        keep |= {r.key for r in pareto_front(search, pareto_metric)}
    return keep


def drop_weights(study, policy: str, run_dir: Path) -> list[TrialRecord]:
    """Delete the weights that ``policy`` no longer keeps (recorded in the study first, so
    a crash leaves at worst a file that the next run deletes); the rows after it.  Only
    files inside ``run_dir`` are ever deleted (a copied run must not touch the original's)."""
    rows = study.rows()
    keep = _weights_kept(rows, policy, study.objective, study.pareto_metric.name)
    drop = [r for r in rows if r.checkpoint and r.complete and r.key not in keep]
    if not drop:
        return rows
    study.drop_weights([r.key for r in drop], f"not kept (--keep-weights {policy})")
    shared = {r.checkpoint for r in rows if r.key in keep}  # rows may share a file
    for r in drop:
        if r.checkpoint not in shared:
            weights_path(run_dir, r.checkpoint).unlink(missing_ok=True)
    return study.rows()


def _tidy(run_dir: Path, rows: list[TrialRecord]) -> None:
    """Before a run starts (nothing is running): what a killed run left behind, the Tune
    checkpoints of its cut-off trials and weights no row refers to, goes."""
    from mbnas.search.tune import drop_checkpoints

    drop_checkpoints(run_dir / "ray", "*/*/checkpoint_*")
    referred = {Path(r.checkpoint).name for r in rows if r.checkpoint}
    for path in (run_dir / "weights").glob("*"):
        if path.is_file() and path.name not in referred:
            path.unlink()


def _fingerprint(settings: SearchSettings, space_text: str) -> dict:
    """What must not change between runs of one search (else results are not comparable)."""
    train = dataclasses.asdict(settings.protocol.train)
    for key in ("device", "threads"):  # where it runs does not change what is measured
        train.pop(key)
    limits = settings.limits.limits
    # A MAC budget is a number, as run.json has held it since the first runs.
    budget = settings.macs_budget if [n for n, _ in limits] == ["macs"] else dict(limits)
    return {"budget": budget, "objective": settings.objective,
            "sampler": settings.sampler, "resolution": settings.resolution,
            "num_classes": settings.num_classes,
            "space_sha256": hashlib.sha256(space_text.encode()).hexdigest()[:16],
            "dataset": settings.protocol.dataset, "subset": settings.protocol.subset,
            "val_size": settings.protocol.val_size, "train": train,
            # what a confirmation's figures mean (more candidates or seeds may be added)
            "confirm": {k: v for k, v in dataclasses.asdict(settings.confirm).items()
                        if k not in ("top", "seeds")},
            # (only where it is not MACs, so that older runs resume)
            **({"pareto_metric": settings.pareto_metric}
               if settings.pareto_metric != "macs" else {}),
            **({"startup": settings.startup} if settings.startup != "random" else {}),
            # a table's prices are part of what a run measured
            **({"latency_table_sha256": hashlib.sha256(
                Path(settings.latency_table).read_bytes()).hexdigest()[:16]}
               if settings.latency_table else {})}


def _check_settings(run_dir: Path, fingerprint: dict) -> None:
    path = run_dir / "run.json"
    if not path.exists():
        return
    try:
        stored = json.loads(path.read_text())["fingerprint"]
        if not isinstance(stored, dict):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError):
        raise MbnasError(f"{path} is damaged; move the run folder away or pick another --name") \
            from None
    for key, value in fingerprint.items():
        if stored.get(key) != value:
            raise MbnasError(
                f"run {run_dir.name!r} was started with {key}={stored.get(key)!r}, this command "
                f"asks for {value!r}; rerun with the same settings to resume, or use another "
                "--name")


SQLITE_HEADER = b"SQLite format 3\x00"


def check_resumable(run_dir: Path) -> None:
    """Refuse, before anything in ``run_dir`` changes, a run that cannot be resumed as it
    is: results without the study they came from, a study without its settings, or a
    ``study.db`` that is not a run's Optuna study."""
    db, settings = run_dir / "study.db", run_dir / "run.json"
    afresh = (f"nothing was changed; start afresh with another --name, or move {run_dir} "
              "away")
    results = [name for name in ("trials.csv", "best.json") if (run_dir / name).exists()]
    if (run_dir / "weights").is_dir() and any((run_dir / "weights").iterdir()):
        results.append("weights/")
    if not db.exists():
        if results:
            raise MbnasError(f"run {run_dir.name!r} has {', '.join(results)} but no study.db, "
                             f"which a resumed search continues from; {afresh}")
        return
    if not settings.exists():
        raise MbnasError(f"run {run_dir.name!r} has a study.db but no run.json (its "
                         f"settings); {afresh}")
    problem = _study_problem(db)
    if problem:
        raise MbnasError(f"{db} {problem}; {afresh}")


def _study_problem(db: Path) -> str:
    """Why ``db`` is not a run's study ("" if it is one), read without changing it."""
    import sqlite3

    try:
        with db.open("rb") as f:
            if f.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
                return "is not an SQLite database (damaged or foreign)"
        connection = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
        try:
            names = {row[0] for row in connection.execute("SELECT study_name FROM studies")}
        finally:
            connection.close()
    except (OSError, sqlite3.Error) as err:
        return f"cannot be read as an Optuna study ({err})"
    return "" if "search" in names else "holds no search study (damaged or foreign)"


def check_agrees(run_dir: Path, rows: list[TrialRecord], log) -> None:
    """``trials.csv`` (written from the study after every trial) must not name a trial the
    study lacks; weights the study says are kept should be there."""
    from mbnas.search.runs import read_trials

    try:
        written = read_trials(run_dir) if (run_dir / "trials.csv").exists() else []
    except MbnasError as err:  # derived from the study: rewritten below
        log(f"warning: {err}; it is rewritten from study.db")
        return
    study = {(r.number, r.name): r.arch for r in rows}
    for r in written:
        if study.get((r.number, r.name)) != r.arch:
            label = f"reference {r.name}" if r.is_reference else f"trial {r.number}"
            raise MbnasError(f"{run_dir / 'trials.csv'} and study.db disagree: {label} is "
                             "not in the study as trials.csv records it; nothing was "
                             f"changed; start afresh with another --name, or move {run_dir} "
                             "away")
    missing = [r.label for r in rows
               if r.checkpoint and not weights_path(run_dir, r.checkpoint).is_file()]
    if missing:
        log(f"warning: the weights of trial(s) {', '.join(missing)} are missing "
            f"from {run_dir / 'weights'}; they cannot be exported with trained weights")


def write_trials_csv(rows: list[TrialRecord], path: Path) -> None:
    write_csv(path, [r.to_row() for r in rows], columns(rows))


@dataclass
class SearchOutcome:
    run_dir: Path
    winner: TrialRecord | None
    references: list[TrialRecord]
    front: list[TrialRecord]
    rows: list[TrialRecord]
    interrupted: list[int]
    seeds: list[str]
    confirmation: dict | None = None  # rows (mean ± spread per entry) and the verdict
    near_chance: str = ""  # why no winner is meaningful, when the protocol learned nothing
    proxy_noise: str = ""  # how far a one-seed proxy accuracy can be trusted
    winner_latency: dict | None = None  # measure_winner()
    rivals: list[dict] = dataclasses.field(default_factory=list)  # rival_rows()


def prepare(settings: SearchSettings) -> tuple[SearchSpace, str]:
    """Everything checked before a file is written: name, space, budget."""
    check_name(settings.run_name)
    if settings.trials < 1:
        raise MbnasError(f"--trials: {settings.trials} must be at least 1")
    keep_best(settings.keep_weights)
    space = resolve_space(settings.space)
    from mbnas.arch.seeds import spaces_dir

    space_path = Path(settings.space) if settings.space and Path(settings.space).exists() \
        else spaces_dir() / f"{settings.space or 'mobilenet'}.yaml"
    from mbnas.training.proxy import load_data

    load_data(settings.protocol)  # a missing or malformed data set stops us here, exit 2
    if settings.address is None and settings.protocol.train.device == "cuda":
        from mbnas.training.trainer import pick_device

        pick_device("cuda")  # no GPU here: refused before the run folder is made
    for m in settings.limits.metrics:
        limit = settings.limits.limit(m.name)
        cheapest = space.cheapest(resolution=settings.resolution,
                                  num_classes=settings.num_classes, metric=m)
        cost = m.price(cheapest)
        if cost > limit:
            exact = f"{cost:,} {m.unit}: " if m.name == "macs" else ""
            raise MbnasError(
                f"budget {m.format(limit)} {m.unit} is below the cheapest member of space "
                f"{space.name!r}, which costs {m.format(cost)} {m.unit} "
                f"({exact}{encode(cheapest)}); "
                "raise --budget or widen the space")
    return space, space_path.read_text()


def run_search(settings: SearchSettings, *, log=print) -> SearchOutcome:
    from mbnas.search.study import RunStudy

    settings = dataclasses.replace(settings, protocol=settings.protocol.with_absolute_paths())
    space, space_text = prepare(settings)
    run_dir = settings.run_dir
    fingerprint = _fingerprint(settings, space_text)
    _check_settings(run_dir, fingerprint)
    check_resumable(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(run_dir / ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise MbnasError(f"run {settings.run_name!r} is in use by another mbnas search "
                         f"(lock {run_dir / '.lock'}); wait for it or use another --name") \
            from None
    try:
        widths = seed_widths(run_dir, settings, space)
        if not (run_dir / "run.json").exists():
            write_json(run_dir / "run.json", {
                "name": settings.run_name, "created": time.strftime("%Y-%m-%d %H:%M:%S"),
                "space": space.name, "fingerprint": fingerprint, "seed_widths": widths,
                # where its latency prices come from (mbnas show plots against them)
                **({"latency_table": str(Path(settings.latency_table).resolve())}
                   if settings.latency_table else {})})
        space = space.with_widths(widths)
        study = RunStudy(run_dir / "study.db", space, budget=settings.limits,
                         objective=settings.objective, sampler=settings.sampler,
                         startup=settings.startup,
                         seed=settings.protocol.train.seed, resolution=settings.resolution,
                         num_classes=settings.num_classes,
                         pareto_metric=settings.pareto_metric, recorded=settings.recorded)
        check_agrees(run_dir, study.rows(), log)
        log(f"mbnas search: run {run_dir}, budget {settings.limits.text()}, "
            f"{settings.trials} trials")
        interrupted = study.recover_interrupted()
        if interrupted:
            log(f"resuming: trials {', '.join(f'#{n}' for n in interrupted)} were cut off "
                "by an interrupted run and are queued again")
        seeds = study.enqueue_seeds()
        _tidy(run_dir, drop_weights(study, settings.keep_weights, run_dir))
        near_chance = _run_phases(settings, study, run_dir, log)
        return _finish(settings, study, run_dir, interrupted, seeds, near_chance)
    finally:
        lock.release()


def seed_widths(run_dir: Path, settings: SearchSettings, space: SearchSpace) -> list[float]:
    """The widths a run adds to its space: its seeds' widths scaled to the budget, as
    ``run.json`` recorded them when the run began (none for runs made before), so that a
    resumed run samples from the same choices."""
    path = run_dir / "run.json"
    if path.exists():
        widths = json.loads(path.read_text()).get("seed_widths", [])
        if not isinstance(widths, list) or not all(
                isinstance(w, (int, float)) and not isinstance(w, bool) and 0 < w <= 10
                for w in widths):
            raise MbnasError(f"{path}: seed_widths {widths!r} is damaged; move the run "
                             "folder away or pick another --name")
        return widths
    return [a.width for _, a in scaled_seeds(space, settings.limits,
                                             resolution=settings.resolution,
                                             num_classes=settings.num_classes)]


def trial_resources(settings: SearchSettings, resources: dict) -> tuple[float, float]:
    """CPUs and GPUs per trial: the user's, else a fair share of the cluster; refused in
    one line when they contradict the cluster or ``--device``/``--threads``."""
    have_cpus, have_gpus = resources.get("CPU", 0), resources.get("GPU", 0)
    device, threads = settings.protocol.train.device, settings.protocol.train.threads
    gpus = settings.gpus_per_trial
    if gpus is None:
        gpus = 1.0 if have_gpus >= 1 and device != "cpu" else 0.0
    if device == "cuda" and gpus == 0:
        why = ("--gpus-per-trial is 0" if settings.gpus_per_trial == 0
               else f"the Ray cluster has {have_gpus:g} GPUs")
        raise MbnasError(f"--device cuda was asked for but {why}; use --device auto or cpu, "
                         "or give trials a GPU with --gpus-per-trial")
    if device == "cpu" and gpus > 0:
        raise MbnasError(f"--device cpu contradicts --gpus-per-trial {gpus:g}; drop one of them")
    if gpus > have_gpus:
        raise MbnasError(f"--gpus-per-trial {gpus:g} asks for GPUs the cluster does not have "
                         f"({have_gpus:g})")
    cpus = settings.cpus_per_trial or max(1.0, have_cpus // settings.concurrency)
    if cpus > have_cpus:
        raise MbnasError(f"--cpus-per-trial {cpus:g} is more than the cluster's "
                         f"{have_cpus:g} CPUs")
    if threads is not None and threads > cpus:
        raise MbnasError(f"--threads {threads} is more than the {cpus:g} CPUs each trial "
                         "reserves; raise --cpus-per-trial or lower --threads")
    return cpus, gpus


def one_per_core(settings: SearchSettings, resources: dict, gpus: float) -> int:
    """How many trainings run at once, one CPU each, where the user left the CPUs to
    mbnas (a local CPU search, no --concurrency, --cpus-per-trial or --threads); 0 where
    the user set them."""
    cpus = int(resources.get("CPU", 0))
    left_to_us = (gpus == 0 and settings.address is None and settings.concurrency == 1
                  and settings.cpus_per_trial is None and settings.protocol.train.threads is None)
    return cpus if left_to_us and cpus >= 2 else 0


def _slots(common: dict) -> str:
    return (f"{common['concurrency']} at a time, {common['cpus']:g} CPU + {common['gpus']:g} "
            "GPU each")


def _run_phases(settings: SearchSettings, study, run_dir: Path, log) -> str:
    """References, search, confirmation; returns why the run is noise ("" if it is not).
    Ray is started at the first training: a rerun of a finished run starts none."""
    slots = _Slots(settings, run_dir, log)
    session = time.strftime("%Y%m%d-%H%M%S")
    weights = (run_dir / "weights").resolve()

    def save_csv() -> None:
        write_trials_csv(drop_weights(study, settings.keep_weights, run_dir),
                         run_dir / "trials.csv")

    archs, over = reference_archs(settings, study.space)
    refs = study.reference_source(archs)
    if over:
        macs_only = [n for n, _ in settings.limits.limits] == ["macs"]
        log(f"no rival from {', '.join(over)}: over the "
            f"{format_count(settings.macs_budget) if macs_only else settings.limits.text()} "
            f"budget even at width {MIN_WIDTH:g}, the narrowest a rival takes"
            + (" (" + ", ".join(f"{format_count(m)} MACs" for m in over.values()) + ")"
               if macs_only else "") + "; --references names any to train")
    if len(refs):
        mtune = slots.tune()
        ref_slots, ref_protocol = slots.fixed, slots.fixed_protocol
        if slots.per_core and len(refs) < slots.per_core:  # fewer than the cores: share
            threads = slots.per_core // len(refs)
            ref_slots = {**slots.common, "concurrency": len(refs), "cpus": float(threads)}
            ref_protocol = dataclasses.replace(
                settings.protocol,
                train=dataclasses.replace(slots.train, threads=threads)).to_dict()
        log(f"phase 1: training {len(refs)} reference(s) under the same protocol "
            f"({_slots(ref_slots)})")
        searcher = mtune.StudySearcher(refs, count=len(refs), protocol=ref_protocol,
                                       weights_dir=weights)
        searcher.after_tell = save_csv
        mtune.run_trials(searcher, name=f"references-{session}", early_stopping=False,
                         label="references", **ref_slots)
    remaining = settings.trials - study.counted()
    if remaining > 0:
        mtune = slots.tune()
        # Left to mbnas, a CPU search also trains one trial per core (1.21x the networks
        # per minute on 2 cores); TPE's constant liar covers the trials still running.
        search_slots, search_protocol = ((slots.fixed, slots.fixed_protocol) if slots.per_core
                                         else (slots.common, slots.protocol))
        log(f"phase 2: {remaining} search trial(s) of {settings.trials} "
            f"({_slots(search_slots)})")
        searcher = mtune.StudySearcher(study, count=remaining, protocol=search_protocol,
                                       weights_dir=weights, faults=settings.faults)
        searcher.after_tell = save_csv
        mtune.run_trials(searcher, name=f"search-{session}",
                         early_stopping=settings.early_stopping, label="search",
                         **search_slots)
        if searcher.exhausted:
            log(f"search ended early: {searcher.exhausted}")
    else:
        log(f"all {settings.trials} trials are already done; raise --trials to search further")
    rows = study.rows()
    noise = _near_chance(settings, [r for r in rows if not r.is_reference]
                         + [r for r in rows if r.is_reference])
    if noise:
        log(f"no confirmation: {noise}")
        return noise
    refs = [r for r in rows if r.is_reference]
    if _near_chance(settings, refs):
        log(f"warning: {_near_chance(settings, refs, who='the references')}; comparisons "
            "with them say nothing")
    if settings.confirm.enabled:
        _confirm(settings, study, slots, session, log)
    return ""


class _Slots:
    """Where the trainings run, worked out on first use: Ray started (or joined), the
    cluster's resources read, and each phase's protocol and slots from them."""

    def __init__(self, settings: SearchSettings, run_dir: Path, log) -> None:
        self._settings, self._run_dir, self._log = settings, run_dir, log
        self._ready = False

    def tune(self):
        from mbnas.search import tune as mtune

        if not self._ready:
            self._start(mtune)
        return mtune

    def __getattr__(self, name: str):  # train, protocol, common, fixed*, per_core
        if name.startswith("_"):
            raise AttributeError(name)
        self.tune()
        return self.__dict__[name]

    def _start(self, mtune) -> None:
        settings = self._settings
        mtune.start_ray(settings.address, log=self._log)
        resources = mtune.cluster_resources()
        cpus, gpus = trial_resources(settings, resources)
        # Where each trial trains follows from its resources; --device and --threads are
        # honoured or refused there, never silently replaced.
        train = dataclasses.replace(settings.protocol.train,
                                    threads=settings.protocol.train.threads or max(1, int(cpus)),
                                    device="cuda" if gpus > 0 else "cpu")
        self.train = train
        self.protocol = dataclasses.replace(settings.protocol, train=train).to_dict()
        self.common = {"storage": self._run_dir / "ray", "concurrency": settings.concurrency,
                       "cpus": cpus, "gpus": gpus, "epochs": train.epochs}
        # Phases 1 and 3 train fixed lists whose trainings wait on nothing: on a CPU
        # machine left to the defaults they train one network per core at a time, which
        # trains more networks per minute than all cores on one (bench/threads.py: 1.21x
        # on 2 cores).
        self.fixed_train, self.fixed = train, self.common
        self.per_core = one_per_core(settings, resources, gpus)
        if self.per_core:
            self.fixed_train = dataclasses.replace(train, threads=1)
            self.fixed = {**self.common, "concurrency": self.per_core, "cpus": 1.0}
        self.fixed_protocol = dataclasses.replace(settings.protocol,
                                                  train=self.fixed_train).to_dict()
        self._ready = True


def reference_archs(settings: SearchSettings, space: SearchSpace
                    ) -> tuple[dict[str, Arch], dict[str, int]]:
    """The references to train (name -> spec), and the rival families no width fits
    (name -> MACs at :data:`~mbnas.search.rivals.MIN_WIDTH`).  By default the rivals
    scaled to the budget that the search does not train already as seed candidates (the
    default space holds V2 but not V1 by its paper's rules, nor V3-Large); named ones are
    the canonical networks at width 1.0, whatever they cost."""
    if settings.references is not None:
        return {n: canonical(n, resolution=settings.resolution,
                             num_classes=settings.num_classes)
                for n in settings.references}, {}
    rivals, over = scaled(settings.limits, resolution=settings.resolution,
                          num_classes=settings.num_classes)
    if settings.confirm.enabled:  # it retrains every rival, at a higher fidelity
        return {}, over
    seeded = {network_key(encode(a)) for _, a in scaled_seeds(
        space, settings.limits, resolution=settings.resolution,
        num_classes=settings.num_classes)}
    return {r.label: r.arch for r in rivals if network_key(encode(r.arch)) not in seeded}, over


def rival_rows(settings: SearchSettings, rows: list[TrialRecord]) -> list[dict]:
    """The rivals scaled to the budget, each with its proxy training in this run: the
    search trial that trained the same network (a seed candidate), else its reference
    (what ``best.json`` and the summary show beside the winner)."""
    rivals, _ = scaled(settings.limits, resolution=settings.resolution,
                       num_classes=settings.num_classes)
    out = []
    for rival in rivals:
        key = network_key(encode(rival.arch))
        trained = [r for r in rows if not r.is_reference and r.complete
                   and network_key(r.arch) == key]
        trained += [r for r in rows if r.is_reference and r.name == rival.label]
        record = trained[0] if trained else None
        out.append({"name": rival.name, "label": rival.label, "width": rival.width,
                    "macs": rival.macs, "params": count(rival.arch).params,
                    "arch": encode(rival.arch),
                    "trained_as": (None if record is None else
                                   f"reference {record.name}" if record.is_reference
                                   else f"trial {record.number}"),
                    "proxy_val_acc": record.val_acc if record else None})
    return out


def measure_winner(settings: SearchSettings, winner: TrialRecord | None) -> dict | None:
    """With a latency table: the winner's end-to-end latency measured once, as the table
    was (runtime, threads, batch), beside its prediction (:func:`measure_network`)."""
    if not settings.latency_table or winner is None:
        return None
    return measure_network(settings.latency_table, winner.arch)


def measure_network(table_path, arch_text: str) -> dict | None:
    """The network ``arch_text`` (encoded) measured end to end once in a fresh process (a
    search's own holds Ray's threads and the trainings' memory), as the table at
    ``table_path`` was measured, beside the table's prediction.  Only on the device the
    table was built on: elsewhere a measurement checks nothing about the prediction, so
    none is taken and ``not_measured`` says why (``measured_ms`` None).  None where the
    measurement failed (a warning says why; the search's results stand without it)."""
    import json
    import subprocess
    import sys

    from mbnas.arch.encoding import decode
    from mbnas.latency.measure import device_model
    from mbnas.latency.table import load_table

    table = load_table(table_path)
    m = table.meta
    holdout = table.holdout()
    out = {"predicted_ms": round(table.predict(decode(arch_text)), 4), "measured_ms": None,
           "statistic": m.statistic, "measured_on": table.describe(),
           # How close the table comes to networks it never saw: what to expect of the
           # prediction, measured or not.
           "holdout": holdout and {"networks": holdout.networks,
                                   "median_error": round(holdout.median_error, 4),
                                   "within_10": round(holdout.within_10, 4)}}
    try:
        here = device_model(m.runtime)
    except Exception:  # noqa: BLE001 - no such device here (cuda): nothing to time on
        here = "no such device"
    if here != m.cpu:
        return {**out, "not_measured": (
            f"this machine is {here}, not the table's device ({m.cpu}); on that device "
            f"`python -m mbnas.latency ARCH {m.runtime} {m.threads} {m.batch} {m.rounds} "
            f"{m.repeats} {m.min_seconds}` times it")}
    done = subprocess.run([sys.executable, "-m", "mbnas.latency", arch_text, m.runtime,
                           str(m.threads), str(m.batch), str(m.rounds), str(m.repeats),
                           str(m.min_seconds)], capture_output=True, text=True)
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        print(f"mbnas: warning: the winner's latency could not be measured ({why}); "
              f"`mbnas latency build {arch_text} --out T` times it", file=sys.stderr)
        return None
    entry = json.loads(done.stdout.strip().splitlines()[-1])
    # Measured by the figure the table predicts (its statistic), so the two compare.
    measured = entry["q1_ms"] if m.statistic == "q1" else entry["median_ms"]
    return {**out, "measured_ms": measured, "median_ms": entry["median_ms"],
            "q1_ms": entry["q1_ms"], "q3_ms": entry["q3_ms"], "runs": entry["runs"]}


def _near_chance(settings: SearchSettings, rows: list[TrialRecord], who: str = "") -> str:
    """Why these trained rows say the protocol learned nothing (else "")."""
    from mbnas.training.proxy import load_data

    done = [r for r in rows if r.complete]
    classes = load_data(settings.protocol).num_classes
    if not near_chance([r.val_acc for r in done], classes, settings.noise):
        return ""
    best = max(done, key=lambda r: r.val_acc)
    what = who or f"every trained network ({len(done)})"
    text = (f"the proxy protocol learns nothing for {what}: the best, "
            f"{best.name or 'trial ' + str(best.number)}, reached "
            f"{100 * best.val_acc:.1f}% on {classes} classes, where chance is "
            f"{100 / classes:.1f}%")
    return text if who else (f"{text}; no winner can be named (raise --epochs or --subset, "
                             "or check the data set)")


def _confirm(settings: SearchSettings, study, slots: _Slots, session: str, log) -> None:
    """Phase 3: the best candidates and the widest MobileNets, retrained at the
    confirmation protocol at several seeds (recorded: a resumed run trains the rest)."""
    from mbnas.search.study import Confirmations

    confirm = settings.confirm
    todo = []
    # A MobileNet that is also a candidate shares the candidate's key: trained once.
    unique = {e.key: e for e in confirm_entries(settings, study.rows())}.values()
    done = Confirmations.results(study, complete_only=False)
    if all((e.key, i) in done for e in unique for i in range(confirm.seeds)):
        return
    mtune, train, common = slots.tune(), slots.fixed_train, slots.fixed
    for e in unique:
        for i in range(confirm.seeds):
            p = confirm.protocol(settings.protocol, i)
            p = dataclasses.replace(p, train=dataclasses.replace(
                p.train, threads=train.threads, device=train.device))
            todo.append((e.key, i, e.arch, p.to_dict()))
    source = Confirmations(study, todo)
    if not len(source):
        return
    epochs = confirm.protocol(settings.protocol, 0).train.epochs
    log(f"phase 3: confirming {len(todo) // confirm.seeds} architecture(s) at "
        f"{confirm.seeds} seeds, {epochs} epochs ({len(source)} training(s) to go, "
        f"{_slots(common)})")
    searcher = mtune.StudySearcher(source, count=len(source), protocol={}, weights_dir=None)
    mtune.run_trials(searcher, name=f"confirm-{session}", early_stopping=False,
                     label="confirmation", **{**common, "epochs": epochs})


def confirm_entries(settings: SearchSettings, rows: list[TrialRecord]):
    return entries(rows, settings.confirm, settings.limits, resolution=settings.resolution,
                   num_classes=settings.num_classes)


def confirmation_summary(settings: SearchSettings, study) -> dict | None:
    """The confirmed figures (mean ± spread per entry) and the verdict, if any ran."""
    from mbnas.search.study import Confirmations

    results: dict[str, list[float]] = {}
    for (key, _), acc in sorted(Confirmations.results(study).items()):
        results.setdefault(key, []).append(acc)
    if not results:
        return None
    rows = summarize(confirm_entries(settings, study.rows()), results)
    p = settings.confirm.protocol(settings.protocol, 0)
    return {"protocol": {"epochs": p.train.epochs, "subset": p.subset,
                         "seeds": settings.confirm.seeds},
            "rows": rows, "verdict": verdict(rows)}


def _finish(settings: SearchSettings, study, run_dir: Path, interrupted: list[int],
            seeds: list[str], near_chance_why: str) -> SearchOutcome:
    rows = study.rows()
    write_trials_csv(rows, run_dir / "trials.csv")
    proxy_winner = study.winner()
    winner = proxy_winner
    confirmation = None if near_chance_why else confirmation_summary(settings, study)
    if confirmation and confirmation["verdict"].get("winner"):
        number = confirmation["verdict"]["winner_number"]
        winner = next(r for r in rows if r.number == number and not r.is_reference)
    if near_chance_why:
        winner = None
    references = [r for r in rows if r.is_reference]
    front = study.pareto_front()
    proxy_noise = proxy_noise_note(settings.protocol)
    rivals = rival_rows(settings, rows)
    measured = measure_winner(settings, winner)

    def row(record: TrialRecord | None) -> dict | None:
        return record.to_row() if record else None

    best = {"budget": study.budget, "budgets": dict(study.limits.limits),
            "winner": row(winner), "proxy_winner": row(proxy_winner),
            "confirmation": confirmation, "near_chance": near_chance_why,
            "proxy_noise": proxy_noise, "proxy_spread": measured_spread(settings.protocol),
            "rivals": rivals, "winner_latency": measured,
            "references": [r.to_row() for r in references],
            "pareto_metric": study.pareto_metric.name,
            "pareto_front": [r.to_row() for r in front]}
    write_json(run_dir / "best.json", best)
    return SearchOutcome(run_dir, winner, references, front, rows, interrupted, seeds,
                         confirmation, near_chance_why, proxy_noise, measured, rivals)
