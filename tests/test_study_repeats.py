"""A run never trains one architecture twice, and a resumed sampler continues instead of
replaying its first samples (real Optuna studies in SQLite; no Ray: the study is driven
as the Ray searcher drives it)."""

import pytest

from mbnas.outcome import Exhausted, Status
from mbnas.search.space import parse_space
from mbnas.search.study import RunStudy

# Four members: ds or ir, 8 or 16 channels.
FOUR = parse_space({"output_stride": 4, "width": [1.0], "stem": {"channels": [8]},
                    "stages": [{"block": ["ds", "ir"], "expansion": [2], "channels": [8, 16],
                                "stride": [2]}]})
BUDGET = 10**9


# Enough members (2 x 3 x 8 = 48) that a replayed sample is not met by chance.
MANY = parse_space({"output_stride": 4, "width": [1.0], "stem": {"channels": [8]},
                    "stages": [{"block": ["ds", "ir"], "expansion": [2], "kernel": [3, 5, 7],
                                "channels": [8, 16, 24, 32, 40, 48, 56, 64], "stride": [2]}]})


def study(tmp_path, sampler="random", seed=0, space=FOUR) -> RunStudy:
    tmp_path.mkdir(parents=True, exist_ok=True)
    return RunStudy(tmp_path / "study.db", space, budget=BUDGET, sampler=sampler, seed=seed,
                    resolution=32, num_classes=10)


def train(run: RunStudy, candidate) -> float:
    """Stands for a training: a score that depends on the architecture only."""
    acc = (hash(candidate.arch) % 1000) / 1000
    run.tell(candidate.number, status="complete", val_acc=acc, epochs=1)
    return acc


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_each_member_is_trained_once_then_the_space_is_exhausted(tmp_path, sampler):
    run = study(tmp_path, sampler)
    trained = [run.ask() for _ in range(4)]
    for c in trained:
        train(run, c)
    assert len({c.arch for c in trained}) == 4  # the four members, each once
    with pytest.raises(Exhausted, match="exhausted"):
        run.ask()
    rows = run.rows()
    repeats = [r for r in rows if r.state is Status.REPEAT]
    assert repeats and run.counted() == 4
    by_number = {r.number: r for r in rows}
    for r in repeats:  # answered from the original, with its score, untrained
        original = by_number[r.origin]
        assert r.role_text == f"repeat of #{r.origin}"
        assert r.arch == original.arch and r.val_acc == original.val_acc
        assert r.epochs == 0 and original.state is Status.COMPLETE


# c8 and c16 at width 0.5 both round to 8 channels: two specs, one network.
ROUNDED = parse_space({"output_stride": 4, "width": [0.5], "stem": {"channels": [8]},
                       "stages": [{"block": ["ds"], "channels": [8, 16], "stride": [2]}]})


def test_two_specs_that_build_one_network_are_one_trial(tmp_path):
    run = study(tmp_path, space=ROUNDED)
    train(run, run.ask())
    with pytest.raises(Exhausted):
        run.ask()
    rows = run.rows()
    assert run.counted() == 1
    assert len({r.arch for r in rows}) == 2  # both specs were sampled ...
    assert all(r.state is Status.REPEAT for r in rows[1:])  # ... one was trained


def test_a_running_architecture_is_not_issued_again(tmp_path):
    run = study(tmp_path)
    running = [run.ask() for _ in range(4)]  # none told yet: all four are running
    assert len({c.arch for c in running}) == 4
    with pytest.raises(Exhausted):
        run.ask()


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_a_resumed_sampler_does_not_replay_its_first_samples(tmp_path, sampler):
    def sampled(run: RunStudy, n: int) -> list[dict]:
        """What the sampler proposed for the next ``n`` asks (repeats included)."""
        before = len(run.study.trials)
        for _ in range(n):
            train(run, run.ask())
        return [t.params for t in run.study.trials[before:before + n]]

    first = sampled(study(tmp_path / "a", sampler, space=MANY), 3)
    # The same seed from scratch proposes the same (the search is seeded) ...
    assert sampled(study(tmp_path / "b", sampler, space=MANY), 3) == first
    # ... but a resumed study continues where it was instead of starting over.
    resumed = sampled(study(tmp_path / "a", sampler, space=MANY), 3)
    assert resumed != first  # a replay would propose exactly the first three again


@pytest.mark.parametrize("sampler", ["random", "tpe", "nsga2"])
def test_every_sampler_drives_a_pareto_study(tmp_path, sampler):
    """Accuracy against MACs, as ``--objective pareto`` asks the study (the end-to-end
    test runs it through Ray for TPE and NSGA-II)."""
    from mbnas.outcome import pareto_front

    run = RunStudy(tmp_path / "study.db", MANY, budget=BUDGET, objective="pareto",
                   sampler=sampler, seed=0, resolution=32, num_classes=10)
    assert [d.name for d in run.study.directions] == ["MAXIMIZE", "MINIMIZE"]
    for _ in range(6):
        train(run, run.ask())
    rows = [r for r in run.rows() if not r.is_reference]
    assert run.counted() == 6
    front = run.pareto_front()
    assert front == pareto_front(rows, "macs") and front
