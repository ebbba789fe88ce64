"""The one module that touches Ray: proxy trainings run as Ray Tune trials.

The trainable is a plain function of its config: resume from ``tune.get_checkpoint()``,
then one ``tune.report(metrics, checkpoint=...)`` per epoch.  The training loop
itself (:mod:`mbnas.training.trainer`) knows nothing of Ray.  Which architecture each trial
trains comes from :class:`StudySearcher`, a thin Ray ``Searcher`` over the run's
Optuna study (kept in Optuna's own SQLite storage, so a restarted search resumes
from the study rather than from Tune's experiment state).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mbnas.errors import MbnasError
from mbnas.outcome import Exhausted, Status
from mbnas.search.runs import weights_entry
from mbnas.units import duration

# Ray reads these at import: no usage reporting, no new-style console tables.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")

import ray  # noqa: E402
from ray import tune  # noqa: E402
from ray.tune.schedulers import ASHAScheduler  # noqa: E402
from ray.tune.search import Searcher  # noqa: E402

STATE_FILE = "state.pt"


# --- the trainable ---------------------------------------------------------------


def _inject_fault(fault: str, epoch: int) -> None:
    """Test-only faults, named in a trial's config (see ``mbnas search --inject-faults``)."""
    if fault == "raise" and epoch == 1:
        raise RuntimeError("injected fault: the trial raised")
    if fault == "oom" and epoch == 1:
        raise MemoryError("injected fault: out of memory")
    if fault == "kill" and epoch == 2:
        # The worker dies as under the kernel's OOM killer or a lost node: no exception,
        # after one epoch's checkpoint, which Ray's retry resumes from.  Once: the marker
        # lets the retry run through.
        # In the trial's folder in the run (get_trial_dir() is a per-worker scratch
        # folder, which a retry on a new worker does not see).
        marker = Path(tune.get_context().get_storage().trial_fs_path) / "killed-once"
        if not marker.exists():
            marker.write_text(f"{os.getpid()}\n")  # which worker died, for the tests
            os._exit(137)
    if fault in SLOW:
        time.sleep(SLOW[fault])


# Seconds a slow trial sleeps before its second epoch: long enough for a test to act on a
# trial mid-training (slower: where it must read the study first, on a busy machine).
SLOW = {"slow": 3, "slower": 8}


def proxy_trial(config: dict) -> None:
    """Train one candidate; report after every epoch, with its validation accuracy where
    the epoch was validated (every epoch if ``config["validate_every_epoch"]``, else the
    last one alone: NaN before it)."""
    import dataclasses

    import torch

    from mbnas.arch.encoding import decode
    from mbnas.training.protocol import Protocol
    from mbnas.training.proxy import proxy_trainer, weights_file

    protocol = Protocol.from_dict(config["protocol"])
    fault = config.get("fault", "")
    if fault == "nan":  # a learning rate of NaN: the loss diverges in the first steps
        protocol = dataclasses.replace(
            protocol, train=dataclasses.replace(protocol.train, lr=float("nan")))
    base = {"number": config["number"], "macs": config["macs"],
            "node": ray.get_runtime_context().get_node_id(), "pid": os.getpid()}
    try:
        target = decode(config["arch"])
        trainer = proxy_trainer(target, protocol)
        checkpoint = tune.get_checkpoint()
        if checkpoint:
            with checkpoint.as_directory() as folder:
                trainer.load_state_dict(torch.load(Path(folder) / STATE_FILE,
                                                   weights_only=False))
        base["from_epoch"] = trainer.epoch  # > 0: Ray retried the trial from a checkpoint
        epochs = protocol.train.epochs
        train_seconds = 0.0

        def report(result) -> None:
            nonlocal train_seconds
            train_seconds += result.seconds
            done = trainer.epoch == epochs
            metrics = {**base, "val_acc": result.val_acc, "loss": result.loss,
                       "epoch": result.epoch, "images_per_s": result.images_per_s,
                       "train_seconds": train_seconds,
                       "status": (Status.COMPLETE if done else Status.RUNNING).value,
                       "error": ""}
            if done:  # the trial ends here: its weights are what is kept, not a checkpoint
                if config.get("weights_path"):
                    _save_weights(weights_file(trainer, target), Path(config["weights_path"]))
                tune.report(metrics)
            else:
                with tempfile.TemporaryDirectory() as folder:
                    torch.save(trainer.state_dict(), Path(folder) / STATE_FILE)
                    tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))

        outcome = trainer.fit(report, before_epoch=lambda epoch: _inject_fault(fault, epoch),
                              validate_every_epoch=config.get("validate_every_epoch", True))
        if outcome.status is Status.DIVERGED:
            tune.report({**base, "val_acc": 0.0, "status": Status.DIVERGED.value,
                         "error": outcome.error})
    except Exception as err:  # a trial's own failure is recorded, not retried
        message = f"{type(err).__name__}: {err}".splitlines()[0][:300]
        tune.report({**base, "val_acc": 0.0, "status": Status.FAILED.value, "error": message})


def _save_weights(payload: dict, path: Path) -> None:
    import torch

    from mbnas.files import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda temp: torch.save(payload, temp))


# --- the searcher ----------------------------------------------------------------


@dataclass
class Tally:
    """What the progress line shows."""

    total: int
    done: int = 0
    stopped: int = 0
    failed: int = 0
    running: int = 0
    best_acc: float | None = None
    best_cost: str = ""  # what the best costs, in the budget's metrics: "298M MACs"
    seconds: list[float] = field(default_factory=list)


class StudySearcher(Searcher):
    """Ray's view of a study: ``suggest`` asks it for a candidate, ``on_trial_complete``
    tells it the outcome.  ``source`` has ``ask()``, ``report(number, acc, epoch)`` and
    ``tell(number, **outcome)``: :class:`mbnas.search.study.RunStudy` or its references."""

    def __init__(self, source, *, count: int, protocol: dict, weights_dir: Path | None,
                 faults: dict[int, str] | None = None) -> None:
        super().__init__(metric="val_acc", mode="max")
        self.study, self.count, self.protocol = source, count, protocol
        self.weights_dir, self.faults = weights_dir, faults or {}
        self.issued = 0
        self.exhausted = ""  # why the study has nothing new to train, if so
        self.limit = count  # the end of the current Tune run (see run_trials)
        self.trials: dict[str, dict] = {}
        self.tally = Tally(total=count)
        self.after_tell: Callable[[], None] | None = None
        # Only early stopping reads an accuracy before the last epoch (run_trials sets it).
        self.validate_every_epoch = True

    def __getstate__(self) -> dict:
        """What Tune pickles into its experiment state: all but the live study and the
        callback.  The study's state lives in Optuna's storage, which is what a resumed
        run reads (never Tune's state: ray issue 30861), and its sampler need not pickle:
        Optuna 5.1's NSGA-II holds a thread lock, and pickling it failed every
        ``--sampler nsga2`` search at Tune's start."""
        return {**self.__dict__, "study": None, "after_tell": None}

    def suggest(self, trial_id: str):
        if self.issued >= min(self.count, self.limit) or self.exhausted:
            return Searcher.FINISHED
        try:
            candidate = self.study.ask()
        except Exhausted as err:
            self.exhausted = str(err)
            return Searcher.FINISHED
        self.issued += 1
        config = {"number": candidate.number, "arch": _encode(candidate.arch),
                  "macs": candidate.macs, "protocol": candidate.protocol or self.protocol,
                  "fault": self.faults.get(self.issued, ""),
                  "validate_every_epoch": self.validate_every_epoch,
                  "weights_path": str(self.weights_dir / f"{candidate.key}.pt")
                  if self.weights_dir else ""}
        self.trials[trial_id] = {"config": config, "start": time.perf_counter()}
        self.tally.running += 1
        return config

    def _cost(self, config: dict) -> str:
        """What a trial's network costs in the budget's metrics (MACs where the source has
        no budget), for the progress line: priced once it is the best so far."""
        from mbnas.arch.encoding import decode
        from mbnas.costs import MACS

        limits = getattr(self.study, "limits", None)
        metrics = limits.metrics if limits is not None else (MACS,)
        arch = decode(config["arch"])
        try:
            return " and ".join(f"{m.format(m.price(arch))} {m.unit}" for m in metrics)
        except MbnasError:  # a reference the latency table cannot price: its MACs
            return f"{MACS.format(MACS.price(arch))} {MACS.unit}"

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        info = self.trials.get(trial_id)
        if info and "epoch" in result:
            number = info["config"]["number"]
            if _note_attempt(info, result):
                self.study.running(number, attempts=info["attempts"])
            if result["val_acc"] == result["val_acc"]:  # NaN: an epoch not validated
                self.study.report(number, result["val_acc"], result["epoch"])

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        info = self.trials.pop(trial_id, None)
        if info is None:
            return
        config = info["config"]
        seconds = time.perf_counter() - info["start"]
        result = result or {}
        if "pid" in result:
            _note_attempt(info, result)
        epochs = int(result.get("epoch", 0) or 0)
        if error:
            status = Status.FAILED
            message = ("the trial's worker died and retries ran out (see the Ray logs in the "
                       "run folder)")
        else:
            status = Status(result.get("status", Status.FAILED.value))
            message = result.get("error", "")
            if status == Status.RUNNING:  # the scheduler stopped it early
                status = Status.STOPPED
        self.study.tell(config["number"], status=status,
                        val_acc=float(result.get("val_acc", 0.0) or 0.0), epochs=epochs,
                        seconds=seconds, error=message,
                        train_seconds=float(result.get("train_seconds", 0.0) or 0.0),
                        node=str(result.get("node", "")), attempts=info.get("attempts"),
                        checkpoint=weights_entry(config["weights_path"])
                        if status == Status.COMPLETE and config["weights_path"] else "")
        if self.after_tell:
            self.after_tell()
        t = self.tally
        t.running -= 1
        t.seconds.append(seconds)
        if status == Status.COMPLETE:
            t.done += 1
            acc = float(result["val_acc"])
            if t.best_acc is None or acc > t.best_acc:
                t.best_acc, t.best_cost = acc, self._cost(config)
        elif status == Status.STOPPED:
            t.stopped += 1
        else:
            t.failed += 1


def _note_attempt(info: dict, result: dict) -> bool:
    """Add the worker that sent ``result`` to the trial's attempts if it is a new one
    (Ray retried the trial on another worker); True if it was."""
    attempt = {"node": str(result.get("node", "")), "pid": int(result.get("pid", 0) or 0),
               "from_epoch": int(result.get("from_epoch", 0) or 0)}
    attempts = info.setdefault("attempts", [])
    if attempts and (attempts[-1]["node"], attempts[-1]["pid"]) == (attempt["node"],
                                                                   attempt["pid"]):
        return False
    attempts.append(attempt)
    return True


def _encode(arch) -> str:
    from mbnas.arch.encoding import encode

    return encode(arch)


class Progress(tune.Callback):
    """A live line on stderr: trials done/running/stopped/failed, best so far, time."""

    def __init__(self, tally_of: Callable[[], Tally], label: str, concurrency: int) -> None:
        self.tally_of, self.label, self.concurrency = tally_of, label, concurrency
        self.start = time.perf_counter()
        self.last = 0.0
        self.live = sys.stderr.isatty()

    def line(self) -> str:
        t = self.tally_of()
        finished = t.done + t.stopped + t.failed
        elapsed = time.perf_counter() - self.start
        left = ""
        if t.seconds:
            per_trial = sum(t.seconds) / len(t.seconds) / self.concurrency
            left = f", ~{duration(per_trial * (t.total - finished))} left"
        best = (f", best {100 * t.best_acc:.2f}% at {t.best_cost}"
                if t.best_acc is not None else "")
        return (f"[{self.label}] {finished}/{t.total} trials: {t.done} done, {t.running} "
                f"running, {t.stopped} stopped early, {t.failed} failed{best}; "
                f"{duration(elapsed)} elapsed{left}")

    def on_step_end(self, iteration, trials, **info) -> None:
        now = time.perf_counter()
        if self.live and now - self.last > 1.0:
            self.last = now
            print(f"\r{self.line()}\033[K", end="", file=sys.stderr, flush=True)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        print(("\r" if self.live else "") + self.line() + ("\033[K" if self.live else ""),
              file=sys.stderr, flush=True)


class DropCheckpoints(tune.Callback):
    """A trial's Tune checkpoints exist to resume it if its worker dies; once the trial
    is over (its outcome told to the study, its weights saved) they go."""

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        drop_checkpoints(Path(trial.path))

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        drop_checkpoints(Path(trial.path))


def drop_checkpoints(folder: Path, pattern: str = "checkpoint_*") -> None:
    """Remove Tune's checkpoint folders matching ``pattern`` under ``folder``."""
    import shutil

    for path in folder.glob(pattern):
        shutil.rmtree(path, ignore_errors=True)


# --- running -----------------------------------------------------------------------


LOOPBACK = "127.0.0.1"


def start_ray(address: str | None, *, log: Callable[[str], None] = lambda message: None) -> None:
    """Join ``address`` (``auto``, ``host:port``, ``ray://host:port``) or start Ray here,
    every port of it on loopback."""
    if ray.is_initialized():
        return
    kwargs = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR",
              "configure_logging": True}
    try:
        if address:
            log(f"joining the Ray cluster at {address}: every machine that reaches its ports "
                "can run code on it, so keep it on a trusted network")
            ray.init(address=address, **kwargs)
        else:
            with _single_machine():
                ray.init(_node_ip_address=LOOPBACK, object_store_memory=256 * 1024**2,
                         **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as err:
        where = f"the Ray cluster at {address!r}" if address else "a local Ray"
        raise MbnasError(f"cannot start {where}: {str(err).splitlines()[0]}") from None
    if not address:
        node_ip = ray.util.get_node_ip_address()
        if node_ip != LOOPBACK:  # a Ray whose rules changed: refuse rather than expose it
            ray.shutdown()
            raise MbnasError(f"the local Ray registered at {node_ip}, not {LOOPBACK}; "
                             "mbnas keeps a local search on loopback (see docs/search.md, "
                             "Parallelism and clusters)")
        log(f"local Ray started; its ports listen on {LOOPBACK} only")


@contextlib.contextmanager
def _single_machine():
    """Ray's single-machine mode while a local Ray starts.

    On Linux, Ray swaps a node address of 127.0.0.1 for the host's outward address, and
    its servers (GCS, raylet, object manager, workers, the driver) then listen on every
    interface, open to anyone on the network (CVE-2023-48022, issue 12).  In the mode Ray
    uses on macOS and Windows (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``) the node stays at
    127.0.0.1 and every server binds there.  The setting is read at import, so this
    process's copy is set too; the processes Ray starts inherit the environment.
    """
    from ray._private import ray_constants

    name = ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR
    saved_env, saved = os.environ.get(name), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[name], ray_constants.ENABLE_RAY_CLUSTER = "0", False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved
        if saved_env is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved_env


def cluster_resources() -> dict:
    return ray.cluster_resources()


# Tune keeps every trial of a run in the driver's memory and in the experiment state it
# rewrites as it goes: a long search runs as consecutive Tune runs of at most this many
# trials, so that both stay bounded (issue 12, bench/soak.py).  Each starts its workers
# and ASHA's rungs afresh, as a resumed search does.  (The variable is for tests.)
TRIALS_PER_TUNE_RUN = int(os.environ.get("MBNAS_TRIALS_PER_TUNE_RUN", "100"))


def run_trials(searcher: StudySearcher, *, name: str,
               storage: Path, concurrency: int, cpus: float, gpus: float,
               early_stopping: bool, epochs: int, label: str) -> None:
    """Run ``searcher.count`` trials of :func:`proxy_trial` under Tune."""
    trainable = tune.with_resources(proxy_trial, {"cpu": cpus, "gpu": gpus})
    progress = Progress(lambda: searcher.tally, label, concurrency)
    # Validating only the last epoch saves 2 of 3 validations of a default proxy (~9% of
    # its time); the result is the same, but nothing before the end can be stopped.
    searcher.validate_every_epoch = early_stopping and epochs > 1
    part = 0
    while searcher.issued < searcher.count and not searcher.exhausted:
        issued = searcher.issued
        size = min(TRIALS_PER_TUNE_RUN, searcher.count - issued)
        searcher.limit = issued + size
        part += 1
        scheduler = (ASHAScheduler(time_attr="training_iteration", max_t=epochs,
                                   grace_period=1, reduction_factor=2)
                     if early_stopping and epochs > 1 else None)
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler,
                                        num_samples=size,
                                        max_concurrent_trials=concurrency,
                                        metric="val_acc", mode="max",
                                        # A worker keeps its imports, data set and warmed-up
                                        # kernels from one trial to the next: seconds per
                                        # trial.
                                        reuse_actors=True),
            run_config=tune.RunConfig(
                name=name if part == 1 else f"{name}-{part}",
                storage_path=str(storage.resolve()), verbose=0,
                failure_config=tune.FailureConfig(max_failures=2),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                callbacks=[progress, DropCheckpoints()],
            ),
        )
        tuner.fit()
        if searcher.trials:  # Tune returned with trials unfinished: it was interrupted
            raise KeyboardInterrupt
        if searcher.issued == issued:  # Tune asked for nothing: do not loop
            break
