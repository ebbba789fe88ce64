"""``mbnas fidelity``: the statistics on known inputs, the panel, and the command end to end
on the generated data set (a tiny panel, one epoch)."""

from __future__ import annotations

import hashlib
import json
import math

import pytest
from cli import assert_usage_error, run

from mbnas.arch.cost import macs
from mbnas.errors import MbnasError
from mbnas.search.space import resolve_space
from mbnas.training import fidelity as fid
from mbnas.training.baseline import kendall_tau

# --- statistics on known inputs ------------------------------------------------------------


def test_kendall_tau_on_known_orders():
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1
    assert kendall_tau([1, 2, 3, 4], [40, 30, 20, 10]) == -1
    # one discordant pair of three: (2 - 1) / 3
    assert kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))


def test_spread_is_mean_sample_std_and_range():
    s = fid.spread([80.0, 82.0, 84.0])
    assert (s.mean, s.std, s.range, s.n) == (82.0, 2.0, 4.0, 3)
    one = fid.spread([75.5, math.nan])  # a diverged seed does not count
    assert one.mean == 75.5 and math.isnan(one.std) and one.range == 0 and one.n == 1


def test_pooled_std_weights_each_architecture_by_its_degrees_of_freedom():
    # deviations about each mean: (+-1) and (+-2): (1 + 1 + 4 + 4) / (1 + 1)
    assert fid.pooled_std([[70, 72], [80, 84], [90]]) == pytest.approx(math.sqrt(5))
    assert math.isnan(fid.pooled_std([[70], [80]]))


def test_tau_ceiling_is_what_noise_lets_even_a_perfect_ranking_reach():
    far_apart = fid.tau_ceiling([60, 70, 80, 90], [0.1] * 4)
    assert far_apart == (1.0, 1.0, 1.0)
    # two of four within the noise: about half the draws swap them (tau 1 - 2/6)
    mean, low, high = fid.tau_ceiling([60, 70, 80, 80.01], [0.4] * 4)
    assert 1 - 2 / 6 < mean < 1 and low == pytest.approx(1 - 2 / 6) and high == 1
    # all within the noise: no better than chance, and the draw is repeatable
    tied = fid.tau_ceiling([80, 80.1, 80.2, 80.3, 80.4], [5] * 5)
    assert abs(tied[0]) < 0.15 and tied == fid.tau_ceiling([80, 80.1, 80.2, 80.3, 80.4], [5] * 5)
    assert all(math.isnan(v) for v in fid.tau_ceiling([80], [1]))


def test_matched_pairs_are_within_ten_percent_of_the_larger():
    assert fid.matched_pairs([100, 109, 121, 300]) == [(0, 1), (1, 2)]
    assert fid.matched_pairs([100, 112]) == []


def test_pair_agreement_counts_ties_as_half():
    pairs = [(0, 1), (1, 2), (0, 2)]
    assert fid.pair_agreement([1, 2, 3], [1, 2, 3], pairs) == 1
    assert fid.pair_agreement([1, 2, 3], [3, 2, 1], pairs) == 0
    assert fid.pair_agreement([1, 1, 3], [1, 2, 3], pairs) == pytest.approx(2.5 / 3)
    assert math.isnan(fid.pair_agreement([1, 2], [1, 2], []))


def _row(name, macs_m, seed, acc, top1=math.nan, group="space", accs=None):
    return {"name": name, "group": group, "arch": f"arch-{name}", "macs": int(macs_m * 1e6),
            "params": 1_000_000, "imagenet_top1": top1, "seed": seed, "status": "ok",
            "val_acc": acc, "val_accs": accs or f"50.00;{acc:.2f}", "test_acc": math.nan,
            "train_s": 1.0}


def test_summarise_gives_the_panel_figures():
    rows = [_row("a", 100, 0, 70), _row("a", 100, 1, 72),
            _row("b", 105, 0, 75), _row("b", 105, 1, 71),  # b: seed 0 right, seed 1 wrong
            _row("c", 300, 0, 80), _row("c", 300, 1, 80)]
    reference = [_row("a", 100, 0, 60), _row("b", 105, 0, 65), _row("c", 300, 0, 70)]
    f = fid.summarise(rows, reference).figures
    assert f["architectures"] == 3 and f["trainings"] == 6 and f["seeds"] == [0, 1]
    assert f["pooled_std"] == pytest.approx(math.sqrt((2 + 8 + 0) / 3))
    assert f["max_range"] == 4 and f["mean_range"] == pytest.approx(2)
    assert f["tau_reference"] == 1  # means 71, 73, 80 against 60, 65, 70
    per_seed = f["tau_reference_per_seed"]  # seed 0: 1; seed 1: a > b, so 1/3
    assert per_seed.mean == pytest.approx(2 / 3) and per_seed.range == pytest.approx(2 / 3)
    assert f["matched_pairs"] == 1 and f["pair_agreement"] == 1  # only a-b is MAC-matched
    assert f["pair_agreement_per_seed"].mean == 0.5
    assert f["tau_reference_last2"] == 1  # last two: mean(50, acc) keeps the order
    # the baselines a proxy must beat: MACs order a < b < c as the reference does, and
    # every network has the same parameter count (no order at all)
    assert f["tau_reference_macs"] == 1 and math.isnan(f["tau_reference_params"])
    assert f["tau_reference_space_macs"] == 1
    lines = "\n".join(fid.figures_lines(f))
    assert "ranking by MACs alone: 1.000, by parameters alone: n/a" in lines
    assert "space members alone: 1.000 (MACs alone 1.000, parameters alone n/a)" in lines


def test_summarise_says_how_far_the_reference_agrees_with_itself():
    rows = [_row("a", 100, 0, 70), _row("b", 105, 0, 75), _row("c", 300, 0, 80)]
    reference = [_row("a", 100, 0, 60), _row("b", 105, 0, 65), _row("c", 300, 0, 70),
                 _row("a", 100, 1, 66), _row("b", 105, 1, 64), _row("c", 300, 1, 70)]
    f = fid.summarise(rows, reference).figures
    assert f["reference_architectures_with_seeds"] == 3
    assert f["reference_pooled_std"] == pytest.approx(math.sqrt((18 + 0.5 + 0) / 3))
    assert f["reference_seeds_compared"] == [0, 1]
    assert f["tau_reference_seeds"] == pytest.approx(1 / 3)  # seed 1 swaps a and b
    # the reference's mean: a 63 < b 64.5 < c 70, the proxy's order
    assert f["tau_reference"] == f["tau_reference_same"] == 1
    line = next(x for x in fid.figures_lines(f) if "against itself" in x)
    assert "seeds 0 and 1 0.333" in line and "3 architectures" in line
    # a and b lie 1.5 points apart in the reference, within its spread of 2.5 / sqrt(2):
    # even a proxy that ranks every architecture right cannot expect tau 1 against it
    mean, low, high = f["tau_reference_ceiling"]
    assert 0.5 < mean < 1 and high == 1 and low < 1
    assert f["tau_reference_ceiling_space"] == f["tau_reference_ceiling"]  # all are space
    line = next(x for x in fid.figures_lines(f) if "exactly right" in x)
    assert f"about tau {mean:.2f}" in line and "space members alone" in line
    one_seed = fid.summarise(rows, reference[:3]).figures
    assert one_seed["reference_architectures_with_seeds"] == 0
    assert not any("against itself" in x for x in fid.figures_lines(one_seed))
    assert "tau_reference_ceiling" not in one_seed  # an unmeasured spread bounds nothing


def test_summarise_on_canonical_networks_compares_with_macs_and_params():
    rows = [_row("v1", 500, 0, 70, top1=70, group="canonical"),
            _row("v2", 300, 0, 80, top1=72, group="canonical"),
            _row("v3", 200, 0, 85, top1=75, group="canonical")]
    f = fid.summarise(rows).figures
    assert f["canonical_n"] == 3 and f["tau_imagenet"] == 1
    assert f["tau_imagenet_macs"] == -1
    assert math.isnan(f["tau_imagenet_params"])  # every params count is equal
    assert f.get("reference_n") == 0 and "tau_reference" not in f
    assert "no reference" in "\n".join(fid.figures_lines(f))


# --- the panel ------------------------------------------------------------------------


def test_space_members_are_seeded_distinct_and_within_the_band():
    space = resolve_space(None)
    a = fid.space_members(space, budget=300_000_000, size=3, seed=0)
    assert [m.arch for m in a] == [m.arch for m in fid.space_members(space, size=3, seed=0)]
    assert len({m.arch for m in a}) == 3 and [m.name for m in a] == ["space-1", "space-2",
                                                                       "space-3"]
    assert all(0.85 * 300e6 <= macs(m.arch) <= 300e6 for m in a)
    assert [m.arch for m in fid.space_members(space, size=3, seed=1)] != [m.arch for m in a]


def test_a_budget_no_member_fits_is_an_error_not_a_loop():
    with pytest.raises(MbnasError, match="fits a budget"):
        fid.space_members(resolve_space(None), budget=1_000_000, size=2)


def test_canonical_members_carry_the_published_top1():
    members = fid.canonical_members([("mobilenet_v2", 1.0)])
    assert members[0].name == "mobilenet_v2 1" and members[0].top1 == 72.0
    assert len(fid.canonical_members()) == 11


# --- the command, end to end -------------------------------------------------------------

TINY = ["--dataset", "synthetic", "--subset", "192", "--val-size", "100", "--epochs", "1",
        "--batch-size", "64", "--threads", "1", "--models", "mobilenet_v1@0.25",
        "--panel-size", "1", "--panel-budget", "60M"]


def test_fidelity_end_to_end_writes_tables_and_resumes(tmp_path):
    out, ref = tmp_path / "fid", tmp_path / "ref.csv"
    first = run("fidelity", *TINY, "--seeds", "0,1", "--reference", "none", "--out", str(out),
                "--save-reference", str(ref))
    assert first.returncode == 0, first.stderr
    rows = fid.read_rows(out / "fidelity.csv")
    assert sorted((r["name"], r["seed"]) for r in rows) == [
        ("mobilenet_v1 0.25", 0), ("mobilenet_v1 0.25", 1), ("space-1", 0), ("space-1", 1)]
    assert all(r["status"] == "complete" and 0 <= r["val_acc"] <= 100 for r in rows)
    assert "[4/4] space-1 seed 1: val" in first.stderr
    assert "seed spread of proxy val accuracy over 2 seed(s)" in first.stdout
    assert (out / "summary.csv").exists()
    assert "# Proxy fidelity" in (out / "fidelity.md").read_text()
    figures = json.loads((out / "figures.json").read_text())["figures"]
    assert figures["trainings"] == 4 and figures["pooled_std"] >= 0
    assert fid.reference_command(ref).startswith("mbnas fidelity --dataset synthetic")
    assert len(fid.read_rows(ref)) == 4

    before = hashlib.sha256((out / "fidelity.csv").read_bytes()).hexdigest()
    again = run("fidelity", *TINY, "--seeds", "0,1", "--reference", str(ref), "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert "resuming: 4 training(s) already" in again.stderr and " ..." not in again.stderr
    assert hashlib.sha256((out / "fidelity.csv").read_bytes()).hexdigest() == before
    assert "Kendall's tau vs the reference over 2 architectures" in again.stdout
    assert "Reference made by `mbnas fidelity" in (out / "fidelity.md").read_text()

    # A reference grows run by run: a later seed for part of the panel, into the same
    # folder, saves every training in it, with the command that made the last ones.
    grown = tmp_path / "grown.csv"
    more = run("fidelity", *TINY[:-6], "--models", "none", "--panel-size", "1",
               "--panel-budget", "60M", "--seeds", "2", "--reference", "none", "--out",
               str(out), "--save-reference", str(grown))
    assert more.returncode == 0, more.stderr
    assert sorted((r["name"], r["seed"]) for r in fid.read_rows(grown)) == [
        ("mobilenet_v1 0.25", 0), ("mobilenet_v1 0.25", 1), ("space-1", 0), ("space-1", 1),
        ("space-1", 2)]
    assert "--models none" in fid.reference_command(grown)
    before = hashlib.sha256((out / "fidelity.csv").read_bytes()).hexdigest()

    # the same folder under another protocol is refused, and nothing in it changes
    other = run("fidelity", *TINY, "--lr", "0.1", "--reference", "none", "--out", str(out))
    assert_usage_error(other, "another protocol", "lr")
    assert hashlib.sha256((out / "fidelity.csv").read_bytes()).hexdigest() == before


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--seeds", "0,0"], ["--seeds", "distinct"]),
        (["--seeds", "a"], ["--seeds", "not an integer"]),
        (["--models", "mobilenet_v4@1"], ["--models", "mobilenet_v4@1"]),
        (["--reference", "/nonexistent.csv"], ["--reference", "/nonexistent.csv"]),
        (["--panel-budget", "1M"], ["fits a budget"]),
        (["--models", "none", "--panel-size", "0"], ["panel is empty"]),
        (["--seed", "3"], ["--seed", "--seeds"]),
        (["--proxy-adapt", "half"], ["--proxy-adapt", "invalid choice"]),
        (["--proxy-resolution", "4"], ["--proxy-resolution", "at least 8"]),
        (["--jobs", "0"], ["--jobs"]),
        (["--reference", "{bad}"], ["not a fidelity table"]),
    ],
)
def test_bad_fidelity_input_is_one_line_and_exit_2(tmp_path, args, needles):
    (tmp_path / "bad.csv").write_text("name,seed\nv2,zero\n")
    args = [a.replace("{bad}", str(tmp_path / "bad.csv")) for a in args]
    result = run("fidelity", "--dataset", "synthetic", "--out", str(tmp_path / "out"), *args)
    assert_usage_error(result, *needles)
    assert not (tmp_path / "out").exists()
