"""The run's Optuna studies (:mod:`mbnas.search.study`): the README's claims about seeds."""

from __future__ import annotations

import dataclasses

import pytest

from mbnas.arch.cost import count
from mbnas.arch.encoding import decode
from mbnas.arch.seeds import seed, with_overrides
from mbnas.search.space import resolve_space
from mbnas.search.study import RunStudy


@pytest.fixture
def study(tmp_path):
    return RunStudy(tmp_path / "study.db", resolve_space(None), budget=300_000_000)


def test_the_widest_seed_within_budget_is_the_first_candidate(study):
    # docs/search.md, "Seeds and references": at 300M, V2 x0.75 (209.1M) and V1 x0.5 (149.5M).
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
