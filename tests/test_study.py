"""The run's Optuna studies (:mod:`mbnas.search.study`): the README's claims about seeds."""

from __future__ import annotations

import dataclasses

import pytest

from mbnas.arch.cost import count
from mbnas.arch.encoding import decode
from mbnas.arch.seeds import seed, with_overrides
from mbnas.search.rivals import scaled_seeds
from mbnas.search.space import resolve_space
from mbnas.search.study import RunStudy


@pytest.fixture
def study(tmp_path):
    return RunStudy(tmp_path / "study.db", resolve_space(None), budget=300_000_000)


def test_the_seeds_scaled_to_the_budget_are_the_first_candidates(tmp_path):
    """A run adds its seeds' widths scaled to the budget to the space (run.py records them
    in run.json): at 300M the space's V1 (V2's conventions: ReLU6, channels to multiples of
    8) fits at 0.718 and V2 at 0.98, not at the narrower published 0.5 and 0.75."""
    space = resolve_space(None)
    widths = [a.width for _, a in scaled_seeds(space, 300_000_000, resolution=None,
                                               num_classes=1000)]
    assert widths == [0.718, 0.98]
    study = RunStudy(tmp_path / "study.db", space.with_widths(widths), budget=300_000_000)
    assert study.enqueue_seeds() == ["seed: mobilenet_v1 x0.718", "seed: mobilenet_v2 x0.98"]
    assert study.enqueue_seeds() == []  # once per run
    first, second = study.ask(), study.ask()
    assert (first.role_text, second.role_text) == ("seed: mobilenet_v1 x0.718",
                                                   "seed: mobilenet_v2 x0.98")
    for candidate, name, width in ((first, "mobilenet_v1", 0.718),
                                   (second, "mobilenet_v2", 0.98)):
        text = dict(study.space.seeds)[name]
        assert candidate.arch == dataclasses.replace(decode(text), width=width)
        assert candidate.macs <= study.budget
        # ... the widest that fits: the next network up, at any width, does not.
        wider = width
        while count(dataclasses.replace(decode(text), width=wider)).macs == candidate.macs:
            wider = round(wider + 0.001, 3)
        assert count(dataclasses.replace(decode(text), width=wider)).macs > study.budget
    # V2 in the space is the canonical V2: the rival scaled to the budget.
    assert second.arch == with_overrides(seed("mobilenet_v2"), width=0.98)


def test_the_widest_seed_within_budget_is_the_first_candidate(study):
    # A run made before the seeds were scaled (run.json records no seed_widths) keeps the
    # space's own widths: at 300M, V2 x0.75 (209.1M) and V1 x0.5 (149.5M).
    assert study.enqueue_seeds() == ["seed: mobilenet_v1 x0.5", "seed: mobilenet_v2 x0.75"]
    assert study.enqueue_seeds() == []  # once per run
    first, second = study.ask(), study.ask()
    assert (first.role_text, second.role_text) == ("seed: mobilenet_v1 x0.5",
                                                   "seed: mobilenet_v2 x0.75")
    for candidate, name, width, wider in ((first, "mobilenet_v1", 0.5, 0.75),
                                          (second, "mobilenet_v2", 0.75, 1.0)):
        # The space's own copy of the seed (V1 regrouped into seven stages) at that width
        text = dict(study.space.seeds)[name]
        assert candidate.arch == dataclasses.replace(decode(text), width=width)
        assert candidate.macs <= study.budget
        # ... is the widest that fits: the next width up does not.
        assert count(dataclasses.replace(decode(text), width=wider)).macs > study.budget
    v1_half = count(with_overrides(seed("mobilenet_v1"), width=0.5)).macs  # the canonical V1
    assert round(first.macs / 1e6, 1) == round(v1_half / 1e6, 1) == 149.5
    assert round(second.macs / 1e6, 1) == 209.1
    # They are ordinary candidates: told like any trial, they count toward --trials.
    study.tell(first.number, status="complete", val_acc=0.5, epochs=3)
    study.tell(second.number, status="stopped", val_acc=0.4, epochs=1)
    assert study.counted() == 2
    assert study.winner().role_text == "seed: mobilenet_v1 x0.5"


def test_near_seeds_starts_the_sampler_in_the_seeds_neighbourhood(tmp_path):
    """``--startup near-seeds``: the startup trials after the seeds are the seeds (each in
    turn) with two choices drawn again (by default, ``random``, the sampler draws them
    from the whole space)."""
    from mbnas.search.study import NEAR_CHANGES, STARTUP_TRIALS

    space = resolve_space(None)
    widths = [a.width for _, a in scaled_seeds(space, 300_000_000, resolution=None,
                                               num_classes=1000)]

    def startup_trials(db):
        run = RunStudy(db, space.with_widths(widths), budget=300_000_000,
                       startup="near-seeds", seed=3)
        run.enqueue_seeds()
        for _ in range(STARTUP_TRIALS + 2):
            c = run.ask()
            run.tell(c.number, status="complete", val_acc=0.5, epochs=1)
        return run.study.get_trials()

    trials = startup_trials(tmp_path / "a.db")
    seeds = {t.user_attrs["role"]: t.params for t in trials[:2]}
    near = [t for t in trials if "near" in t.user_attrs]
    assert len(near) >= STARTUP_TRIALS - 2 - 2  # a near trial over budget is repaired
    assert {t.user_attrs["near"] for t in near} == set(seeds)  # each seed in turn
    for t in near:
        base = seeds[t.user_attrs["near"]]
        # (a block type drawn again also adds or drops the choices only one type has)
        changed = [k for k in base if k in t.params and t.params[k] != base[k]]
        assert 1 <= len(changed) <= NEAR_CHANGES, changed
    after = trials[-2:]  # past the startup the sampler proposes on its own
    assert not any("near" in t.user_attrs for t in after)
    again = startup_trials(tmp_path / "b.db")  # the same command, the same trials
    assert [t.params for t in again] == [t.params for t in trials]
