"""A cost is one pluggable idea (issue 21): this test registers a metric of its own
("weights": parameters without batch norm) and searches under a budget of it, as the
block-kind test does for kinds."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from mbnas.arch.cost import count, widest_within
from mbnas.arch.seeds import seed
from mbnas.costs import MACS, Budget, Metric, metric, register, unregister
from mbnas.errors import MbnasError
from mbnas.outcome import TrialRecord, columns, pareto_front
from mbnas.search.space import load_space
from mbnas.units import format_count, parse_count

TINY = Path(__file__).parent / "spaces" / "tiny.yaml"


@pytest.fixture
def weights():
    # trials.csv has a "weights" column (kept or why not): the metric's is weight_count.
    yield register(Metric("weights", "weights", lambda a: count(a).weights, parse_count,
                          format_count, "conv and fc weights, batch norm aside",
                          column="weight_count"))
    unregister("weights")


def test_a_metric_may_not_take_a_column_trials_csv_has():
    with pytest.raises(MbnasError, match="column 'weights' is one trials.csv has"):
        register(Metric("weights", "weights", lambda a: 0.0, float, str))


def test_a_budget_fits_within_every_limit(weights):
    v2 = seed("mobilenet_v2")
    cost = count(v2)
    both = Budget.of(macs=cost.macs, weights=cost.weights)
    assert both.fits(v2) and both.load(v2) == 1.0
    tight = Budget.of(macs=cost.macs, weights=cost.weights - 1)
    assert not tight.fits(v2) and tight.over(v2) == {"macs": 0, "weights": 1}
    assert tight.text() == (f"{format_count(cost.macs)} MACs and "
                            f"{format_count(cost.weights - 1)} weights")
    with pytest.raises(MbnasError, match="unknown cost metric 'joules'"):
        Budget.of(joules=1.0)
    with pytest.raises(MbnasError, match="names a metric twice"):
        Budget((("macs", 1.0), ("macs", 2.0)))
    with pytest.raises(MbnasError, match="must be a positive number"):
        Budget.of(macs=math.inf)


def test_the_space_is_repaired_and_priced_by_any_metric(weights):
    space = load_space(TINY)
    cheapest = space.cheapest(resolution=32, num_classes=10, metric=weights)
    floor = count(cheapest).weights
    budget = Budget.of(weights=2 * floor)
    biggest = space.sample(lambda name, choices: max(choices, key=lambda c: (str(type(c)), c)))
    assert count(space.arch(biggest, resolution=32, num_classes=10)).weights > 2 * floor
    repaired = space.repair(biggest, budget, resolution=32, num_classes=10)
    assert budget.fits(space.arch(repaired, resolution=32, num_classes=10))
    # A MAC budget given as a number is what it always was.
    macs = count(space.arch(biggest, resolution=32, num_classes=10)).macs // 2
    assert space.repair(biggest, macs, resolution=32, num_classes=10) == \
        space.repair(biggest, Budget.of(macs=macs), resolution=32, num_classes=10)


def test_a_search_under_a_budget_of_a_registered_metric(weights, tmp_path):
    from mbnas.search.study import CONSTRAINT, RunStudy

    space = load_space(TINY)
    floor = count(space.cheapest(resolution=32, num_classes=10, metric=weights)).weights
    budget = Budget.of(weights=3 * floor)
    study = RunStudy(tmp_path / "study.db", space, budget=budget, resolution=32,
                     num_classes=10, objective="pareto", pareto_metric="weights")
    assert study.budget is None  # no MAC limit
    for i in range(12):
        candidate = study.ask()
        assert count(candidate.arch).weights <= 3 * floor  # priced before anything trains
        study.tell(candidate.number, status="complete", val_acc=0.5 + 0.01 * i, epochs=1)
    rows = [r for r in study.rows() if not r.is_reference]
    assert all(r.cost("weights") == count_weights(r) for r in rows if r.arch)
    over = [t for t in study.study.get_trials() if t.user_attrs.get("over_budget")]
    for t in over:  # told to Optuna as infeasible by the metric's own constraint
        assert t.system_attrs[f"constraints:{CONSTRAINT.format('weights')}"] > 0
    winner = study.winner()
    assert winner is not None and winner.cost("weights") <= 3 * floor
    front = study.pareto_front()
    assert front == pareto_front(rows, "weights") and front
    assert "weight_count" in columns(rows)
    again = TrialRecord.from_row(winner.to_row())  # trials.csv keeps the metric's column
    assert again.cost("weights") == winner.cost("weights")


def count_weights(record: TrialRecord) -> float:
    from mbnas.arch.encoding import decode

    return count(decode(record.arch)).weights


def test_rivals_are_scaled_by_the_budget_s_metrics(weights):
    v2 = seed("mobilenet_v2")
    limit = count(v2).weights
    fitted = widest_within(v2, Budget.of(weights=limit * 0.5))
    assert count(fitted).weights <= 0.5 * limit < count(
        widest_within(v2, Budget.of(weights=limit * 0.6))).weights
    assert widest_within(v2, 300_000_000).width == 0.98  # MACs, as before
    assert metric("macs") is MACS


def test_a_cost_that_can_fall_with_the_width_gets_the_widest_network_that_fits():
    """Latency can fall as the width grows (MobileNetV1's truncated channels off ONNX
    Runtime's blocking cost 1.7x): priced so, the widest V1 within a limit is the wider
    network whose channels suit the runtime, not the first width under an over-budget
    one, as a bisection alone would give."""
    from mbnas.arch.spec import resolve

    def jagged(arch) -> float:  # MACs, 1.7x where a block's input channels are not 4k
        odd = any(b.in_channels % 4 for b in resolve(arch).blocks[1:])
        return count(arch).macs * (1.7 if odd else 1.0)

    v1 = seed("mobilenet_v1")
    register(Metric("jagged", "units", jagged, parse_count, format_count,
                    column="jagged_units", monotone=False))
    try:
        limit = jagged(dataclasses.replace(v1, width=0.75))
        fitted = widest_within(v1, Budget.of(jagged=limit))
        assert fitted.width == 0.75  # every channel count a multiple of 4, and 8
        assert jagged(fitted) <= limit
        # Narrower networks are over the limit (odd channels), so a bisection alone would
        # stop far below: the same network as the widest within it in plain MACs.
        assert jagged(dataclasses.replace(v1, width=0.74)) > limit
        assert widest_within(v1, Budget.of(macs=limit)).width == 0.75
    finally:
        unregister("jagged")
