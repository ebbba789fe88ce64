"""The confirmation's choices and statistics on known inputs."""

import dataclasses
import math

import pytest

from mbnas.arch.cost import count
from mbnas.arch.encoding import encode
from mbnas.arch.seeds import parse_arch
from mbnas.errors import MbnasError
from mbnas.outcome import TrialRecord
from mbnas.search.confirm import (
    NOISE,
    SEARCH_NOISE,
    ConfirmSettings,
    Entry,
    entries,
    measured_spread,
    near_chance,
    proxy_noise_note,
    summarize,
    verdict,
)
from mbnas.search.rivals import scaled
from mbnas.training.protocol import DEFAULT_SUBSET, SEARCH_SUBSET, Protocol

V2 = parse_arch("mobilenet_v2")


def row(number, acc, arch=V2, state="complete", role="search"):
    return TrialRecord.from_row({"number": number, "role": role, "state": state,
                                 "arch": encode(arch), "macs": count(arch).macs,
                                 "val_acc": acc})


def test_the_rivals_are_the_mobilenets_scaled_to_the_budget():
    rivals, over = scaled(300_000_000, resolution=None, num_classes=1000)
    assert [(r.label, round(r.macs / 1e6, 1)) for r in rivals] == [
        ("mobilenet_v1 x0.72", 299.8), ("mobilenet_v2 x0.98", 299.9),
        ("mobilenet_v3_large x1.16", 299.5)] and over == {}
    # Priced at the search's resolution and classes: at 160 px V2 fits at 1.4.
    at_160, _ = scaled(300_000_000, resolution=160, num_classes=10)
    assert all(r.arch.resolution == 160 and r.arch.num_classes == 10 for r in at_160)
    assert dict((r.name, r.width) for r in at_160)["mobilenet_v2"] > 1.4
    # No family has a rival narrower than x0.25 (none is published, most layers sit at
    # their rounding floor): at 6M and 224 px there is none.
    rivals, over = scaled(6_000_000, resolution=None, num_classes=1000)
    assert rivals == [] and set(over) == {"mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large"}
    assert all(macs > 6_000_000 for macs in over.values())


def test_top_candidates_are_distinct_completed_and_within_budget():
    v2 = parse_arch("mobilenet_v2", width=0.98)  # the V2 rival at 300M
    small = parse_arch("mobilenet_v2", width=0.5)
    v3 = parse_arch("mobilenet_v3_large", width=1.16)
    rows = [row(0, 0.9, v2), row(1, 0.95, v2, state="stopped"), row(2, 0.8, small),
            row(3, 0.8, small), row(4, 0.7, parse_arch("mobilenet_v2", width=0.35)),
            row(5, 0.99, V2),  # 300.8M: over the budget
            row(-1, 0.85, v3, role="reference")]
    picked = entries(rows, ConfirmSettings(top=2), 300_000_000, resolution=None,
                     num_classes=1000)
    assert [e.label for e in picked] == ["trial 0", "trial 2", "mobilenet_v1 x0.72",
                                         "mobilenet_v2 x0.98", "mobilenet_v3_large x1.16"]
    v1_rival, v2_rival, v3_rival = picked[2:]
    assert v2_rival.same_as == "trial 0" and v2_rival.proxy_val_acc == 0.9  # trained once
    assert v3_rival.proxy_val_acc == 0.85 and not v3_rival.same_as  # from its reference
    assert math.isnan(v1_rival.proxy_val_acc)  # trained by neither


def test_a_lead_counts_only_beyond_twice_the_spread():
    e = [Entry("trial 1", "candidate", V2, 0.8), Entry("mobilenet_v2 x1", "mobilenet", V2, 0.8)]
    clear = verdict(summarize(e, {"trial-1": [0.90, 0.91], "mobilenet_v2-x1": [0.85, 0.86]}))
    assert clear["beats_mobilenet"] and clear["winner"] == "trial 1"
    assert clear["lead"] == pytest.approx(0.05) and clear["noise"] == pytest.approx(0.00707, 1e-3)
    tie = verdict(summarize(e, {"trial-1": [0.90, 0.86], "mobilenet_v2-x1": [0.85, 0.86]}))
    assert not tie["beats_mobilenet"] and "within the noise" in tie["text"]
    worse = verdict(summarize(e, {"trial-1": [0.80, 0.80], "mobilenet_v2-x1": [0.85, 0.86]}))
    assert not worse["beats_mobilenet"] and "rival, mobilenet_v2 x1, beats" in worse["text"]
    behind = verdict(summarize(e, {"trial-1": [0.84, 0.86], "mobilenet_v2-x1": [0.85, 0.86]}))
    assert "at least as good" in behind["text"] and "A tie." in behind["text"]


def test_near_chance():
    assert near_chance([0.11, 0.12], 10, noise=0.005)
    assert not near_chance([0.11, 0.40], 10, noise=0.005)
    assert near_chance([0.2], 10, noise=0.03)  # 4 x 3 points of noise: 12 points of margin
    assert not near_chance([], 10, noise=0.0)


def test_a_proxy_accuracy_carries_the_measured_spread_of_its_protocol():
    default = Protocol()
    assert measured_spread(default) == NOISE
    # Seed, device, threads and where the data lie do not change the protocol.
    same = dataclasses.replace(default, data_dir="/data", train=dataclasses.replace(
        default.train, seed=7, device="cpu", threads=1))
    assert measured_spread(same) == NOISE
    assert f"{100 * NOISE:.2f} points" in proxy_noise_note(same)
    assert f"under {200 * NOISE:.1f} points" in proxy_noise_note(same)
    # The search's default proxy (3,000 images) has its own, measured alike.
    assert measured_spread(dataclasses.replace(same, subset=SEARCH_SUBSET)) == SEARCH_NOISE
    for other in (dataclasses.replace(default, subset=12_000),
                  dataclasses.replace(default, dataset="cifar10"),
                  dataclasses.replace(default, train=dataclasses.replace(default.train,
                                                                         epochs=5))):
        assert measured_spread(other) is None
        assert "not measured" in proxy_noise_note(other)


def test_the_confirmation_protocol_and_its_checks():
    base = Protocol()
    p = ConfirmSettings(epoch_factor=2).protocol(base, 1)
    assert p.train.epochs == 2 * base.train.epochs and p.train.seed != base.train.seed
    assert ConfirmSettings().protocol(base, 0).train.epochs == 4  # 4/3 x 3
    assert p.subset == base.subset and p.val_size == base.val_size
    # The search screens on 3,000 images by default; its confirmation trains on at least
    # the default protocol's 6,000 (more where the search took more, all where it did).
    for search, confirmed in ((SEARCH_SUBSET, DEFAULT_SUBSET), (12_000, 12_000), (None, None)):
        protocol = dataclasses.replace(base, subset=search)
        assert ConfirmSettings().protocol(protocol, 0).subset == confirmed
    assert ConfirmSettings(subset=2000).protocol(base, 0).subset == 2000  # as asked
    with pytest.raises(MbnasError, match="--confirm-seeds: 1 is not allowed"):
        ConfirmSettings(seeds=1)
    with pytest.raises(MbnasError, match="--confirm-top"):
        ConfirmSettings(top=-1)


def test_a_mobilenet_that_is_a_candidate_is_confirmed_once():
    # The search starts from V2 scaled to the budget; when it is a top candidate, the
    # rival's row shares its trainings (not a second, identical set).
    v2 = parse_arch("mobilenet_v2", width=0.98)
    rows = [row(0, 0.80, parse_arch("mobilenet_v2", width=0.35)), row(1, 0.78, v2),
            row(2, 0.81, parse_arch("mobilenet_v2", width=0.5))]
    picked = entries(rows, ConfirmSettings(top=2), 300_000_000, resolution=None,
                     num_classes=1000)
    assert [e.label for e in picked] == ["trial 2", "trial 0", "mobilenet_v1 x0.72",
                                         "mobilenet_v2 x0.98", "mobilenet_v3_large x1.16"]
    assert picked[3].same_as == "" and picked[3].key == "mobilenet_v2-x0.98"
    picked = entries(rows, ConfirmSettings(top=3), 300_000_000, resolution=None,
                     num_classes=1000)
    mobilenet_v2 = picked[4]
    assert mobilenet_v2.same_as == "trial 1" and mobilenet_v2.key == "trial-1"
    assert len({e.key for e in picked}) == len(picked) - 1  # trained once, listed twice
    # If that shared architecture is the confirmed best, it does not beat itself.
    summary = summarize(picked, {"trial-2": [0.80, 0.80], "trial-0": [0.79, 0.79],
                                 "mobilenet_v1-x0.72": [0.78, 0.78], "trial-1": [0.85, 0.86],
                                 "mobilenet_v3_large-x1.16": [0.84, 0.83]})
    assert [r["seeds"] for r in summary] == [2, 2, 2, 2, 2, 2]
    assert summary[4]["val_accs"] == [0.85, 0.86]
    v = verdict(summary)
    assert v["winner"] == "trial 1" and not v["beats_mobilenet"]
    assert "is mobilenet_v2 x0.98 itself" in v["text"]
    # ... and says how that rival stands against the next one: 85.5% against 83.5%, more
    # than twice the spread pooled over the five (0.45 points).
    assert ("; trial 1 beats the next rival, mobilenet_v3_large x1.16: 85.50 ± 0.71% "
            "against 83.50 ± 0.71%, a lead of 2.00 points") in v["text"]


def test_the_verdict_is_against_the_strongest_rival():
    e = [Entry("trial 1", "candidate", V2, 0.8),
         Entry("mobilenet_v1 x0.72", "mobilenet", V2, 0.8),
         Entry("mobilenet_v3_large x1.16", "mobilenet", V2, 0.8)]
    v = verdict(summarize(e, {"trial-1": [0.90, 0.90], "mobilenet_v1-x0.72": [0.80, 0.80],
                              "mobilenet_v3_large-x1.16": [0.91, 0.91]}))
    assert v["best_mobilenet"] == "mobilenet_v3_large x1.16" and v["lead"] < 0
    assert v["text"].startswith("the strongest rival, mobilenet_v3_large x1.16, beats")


def test_the_noise_is_pooled_over_every_confirmed_architecture():
    # Two seeds of one architecture can agree by luck; the pooled spread does not trust it.
    e = [Entry("trial 1", "candidate", V2, 0.8), Entry("trial 2", "candidate", V2, 0.8),
         Entry("mobilenet_v2 x1", "mobilenet", V2, 0.8)]
    v = verdict(summarize(e, {"trial-1": [0.90, 0.90], "trial-2": [0.80, 0.86],
                              "mobilenet_v2-x1": [0.88, 0.88]}))
    assert v["noise"] == pytest.approx(math.sqrt(0.0018 / 3))
    assert not v["beats_mobilenet"] and "pooled seed spread" in v["text"]
