"""Confirm before crowning: retrain the search's best candidates and the MobileNets
scaled to the budget (:mod:`mbnas.search.rivals`) at a higher fidelity, at several
seeds, and name a winner only when its lead survives the seed noise.  Also: refuse to
rank a protocol that learns nothing.

Torch-, Optuna- and Ray-free: the statistics and the choice of what to confirm.  The
trainings run as Ray Tune trials (:mod:`mbnas.search.tune`) recorded in the run's
``confirmation`` study (:mod:`mbnas.search.study`).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import dataclass

from mbnas.arch.cost import count
from mbnas.arch.encoding import decode, network_key
from mbnas.arch.spec import Arch
from mbnas.costs import Budget
from mbnas.errors import MbnasError
from mbnas.outcome import TrialRecord
from mbnas.search.rivals import scaled
from mbnas.stats import pooled_std, spread
from mbnas.training.protocol import DEFAULT_SUBSET, SEARCH_SUBSET, Protocol

# A lead counts when it is more than this many seed spreads (STYLE.md: "a lead smaller
# than twice the spread is a tie").
LEAD_IN_SPREADS = 2.0
# The default protocol's seed spread of proxy validation accuracy (sample std over seeds,
# pooled over the fidelity panel; `mbnas fidelity`, docs/proxy-protocol.md): 1.20
# points over the 19 networks of the panel at two seeds each
# (`python bench/fidelity/figures.py bench/fidelity/default bench/fidelity/reference-18000x5`).
# A search whose trained networks all end within max(5 points, 4x this) of chance has
# learned nothing and names no winner.
NOISE = 0.012
# The same for the search's default proxy, 3,000 images x 3 epochs, measured alike: 2.12
# points (`python bench/fidelity/figures.py bench/fidelity/3000x3
# bench/fidelity/reference-18000x5`).  It ranks the panel worse than the default (one
# seed: tau 0.48 against 0.68), but a search under it tries twice the candidates in the
# same time, and found better networks (bench/search_quality/cheap20/).
SEARCH_NOISE = 0.0212


# A confirmation trains on at least the default protocol's images, whatever the search's
# proxy took: the search's default of 3,000 is a screen, not a verdict.
CONFIRM_MIN_SUBSET = DEFAULT_SUBSET


@dataclass(frozen=True)
class ConfirmSettings:
    """How the confirmation retrains: ``top`` search candidates (0: no confirmation) and
    the widest MobileNets, at ``seeds`` seeds, with ``epochs`` and ``subset`` training
    images (None: ``epoch_factor`` / ``subset_factor`` times the search protocol's, rounded
    up, and at least :data:`CONFIRM_MIN_SUBSET` images).  The default 4/3 the epochs
    (3 -> 4), 1 candidate and 2 seeds are what fits the quick start's 20 minutes on 2 cores
    beside the three rivals scaled to the budget: at 1.5x (5 epochs) the confirmation of
    the winner and the three rivals alone takes ~11.5 minutes there
    (bench/quickstart/scaled-rivals/).  The one candidate is the search's answer; the
    confirmation says whether it beats the MobileNets."""

    top: int = 1
    seeds: int = 2
    epochs: int | None = None
    subset: int | None = None
    epoch_factor: float = 4 / 3
    subset_factor: int = 1

    def __post_init__(self) -> None:
        if self.top < 0:
            raise MbnasError(f"--confirm-top: {self.top} must be 0 (no confirmation) or more")
        if self.seeds < 2:
            raise MbnasError(f"--confirm-seeds: {self.seeds} is not allowed; a spread needs "
                             "at least 2 seeds")
        for what, value in (("--confirm-epochs", self.epochs), ("--confirm-subset",
                                                                  self.subset)):
            if value is not None and value < 1:
                raise MbnasError(f"{what}: {value} must be at least 1")

    @property
    def enabled(self) -> bool:
        return self.top > 0

    def protocol(self, search: Protocol, seed_index: int) -> Protocol:
        """The confirmation protocol at its ``seed_index``-th seed (seeds other than the
        search's, so no confirmation repeats a search training)."""
        subset = self.subset or (max(search.subset * self.subset_factor, CONFIRM_MIN_SUBSET)
                                 if search.subset else None)
        train = dataclasses.replace(search.train,
                                    epochs=self.epochs or math.ceil(round(
                                        search.train.epochs * self.epoch_factor, 6)),
                                    seed=search.train.seed + 1000 + seed_index)
        return dataclasses.replace(search, subset=subset, train=train)


@dataclass(frozen=True)
class Entry:
    """One architecture to confirm: a search trial or a MobileNet."""

    label: str  # "trial 7" or "mobilenet_v2 x0.75"
    kind: str  # "candidate" or "mobilenet"
    arch: Arch
    proxy_val_acc: float  # its search-protocol score (nan for a MobileNet not in the run)
    same_as: str = ""  # a MobileNet that is also a candidate: that candidate's label
    number: int | None = None  # a candidate's search trial

    @property
    def key(self) -> str:
        """Names its trainings; an architecture listed twice is trained once."""
        return (self.same_as or self.label).replace(" ", "-")


def entries(rows: list[TrialRecord], settings: ConfirmSettings, budget, *,
            resolution: int | None, num_classes: int) -> list[Entry]:
    """What to confirm: the ``top`` best search trials by proxy accuracy (distinct
    networks, within budget, trained to the end) and the rivals scaled to the budget
    (:mod:`mbnas.search.rivals`: V1, V2 and V3-Large at the largest width that fits).  A
    rival that is one of those trials (the search starts from them) shares its
    trainings: no network is confirmed twice.  A rival's proxy accuracy is that of the
    search trial or reference that trained the same network."""
    limits = budget if isinstance(budget, Budget) else Budget.of(macs=budget)
    done = [r for r in rows if r.complete and not math.isnan(r.val_acc)]
    search = [r for r in done if not r.is_reference
              and all(r.cost(n) <= limit for n, limit in limits.limits)]
    search.sort(key=lambda r: (-r.val_acc, r.macs, r.number))
    picked, seen = [], set()
    for r in search:
        if network_key(r.arch) not in seen and len(picked) < settings.top:
            seen.add(network_key(r.arch))
            picked.append(Entry(f"trial {r.number}", "candidate", decode(r.arch), r.val_acc,
                                number=r.number))
    proxy: dict[tuple, float] = {}
    for r in [*search, *(r for r in done if r.is_reference)]:  # search trials first
        proxy.setdefault(network_key(r.arch), r.val_acc)
    candidates = {network_key(_encode(e.arch)): e.label for e in picked}
    rivals, _ = scaled(limits, resolution=resolution, num_classes=num_classes)
    for rival in rivals:
        key = network_key(_encode(rival.arch))
        picked.append(Entry(rival.label, "mobilenet", rival.arch, proxy.get(key, math.nan),
                            same_as=candidates.get(key, "")))
    return picked


def seed_spread(values: list[float]) -> float:
    """The seed spread a confirmed row shows: the sample standard deviation (0, not NaN,
    for fewer than two values, so that best.json stays plain JSON)."""
    std = spread(values).std
    return 0.0 if math.isnan(std) else std


def summarize(entries_: list[Entry], results: dict[str, list[float]]) -> list[dict]:
    """One row per confirmed entry: its accuracies over seeds, mean and spread."""
    rows = []
    for e in entries_:
        accs = results.get(e.key, [])
        rows.append({"label": e.label, "kind": e.kind, "same_as": e.same_as, "number": e.number,
                     "arch": _encode(e.arch),
                     "macs": count(e.arch).macs, "params": count(e.arch).params,
                     "proxy_val_acc": e.proxy_val_acc, "val_accs": accs,
                     "mean": statistics.fmean(accs) if accs else math.nan,
                     "spread": seed_spread(accs), "seeds": len(accs)})
    return rows


def verdict(rows: list[dict]) -> dict:
    """The confirmed winner and whether its lead over the strongest rival (the best
    confirmed MobileNet scaled to the budget) is more than :data:`LEAD_IN_SPREADS` seed
    spreads, pooled over the confirmed architectures (else it
    is a tie, said plainly)."""
    candidates = [r for r in rows if r["kind"] == "candidate" and r["seeds"]]
    mobilenets = [r for r in rows if r["kind"] == "mobilenet" and r["seeds"]]
    if not candidates:
        return {"winner": None, "text": "no candidate was confirmed"}
    winner = max(candidates, key=lambda r: (r["mean"], -r["macs"]))
    out = {"winner": winner["label"], "winner_number": winner.get("number"),
           "winner_arch": winner["arch"], "mean": winner["mean"], "spread": winner["spread"]}
    if not mobilenets:
        out["text"] = (f"{winner['label']}: {_pm(winner)} (no MobileNet fits the budget to "
                       "compare with)")
        return out
    best = max(mobilenets, key=lambda r: r["mean"])
    # Two seeds say little about one architecture's spread (|a - b| / sqrt 2); the
    # protocol's seed noise is one figure, pooled over every confirmed architecture.
    noise = pooled_std([r["val_accs"] for r in rows if not r.get("same_as")])
    noise = 0.0 if math.isnan(noise) else noise
    if best.get("same_as") == winner["label"]:
        out.update(best_mobilenet=best["label"], mobilenet_mean=best["mean"], lead=0.0,
                   noise=noise, beats_mobilenet=False)
        out["text"] = (f"the search's best, {winner['label']}, is {best['label']} itself: "
                       f"{_pm(winner)}; it found nothing better than that rival")
        others = [r for r in mobilenets if r is not best and r.get("same_as") != winner["label"]]
        if others:  # how that rival stands against the next one
            runner_up = max(others, key=lambda r: r["mean"])
            out["text"] += "; " + _graded(winner, runner_up,
                                          winner["mean"] - runner_up["mean"], noise,
                                          who="the next rival")
        return out
    lead = winner["mean"] - best["mean"]
    beats = lead > LEAD_IN_SPREADS * noise
    out.update(best_mobilenet=best["label"], mobilenet_mean=best["mean"], lead=lead,
               noise=noise, beats_mobilenet=beats)
    out["text"] = _graded(winner, best, lead, noise)
    return out


def _graded(winner: dict, best: dict, lead: float, noise: float,
            who: str = "the strongest rival") -> str:
    """How ``winner`` stands against the rival ``best``: a lead (either way) beyond
    :data:`LEAD_IN_SPREADS` pooled seed spreads, or a tie."""
    if lead > LEAD_IN_SPREADS * noise:
        return (f"{winner['label']} beats {who}, {best['label']}: "
                f"{_pm(winner)} against "
                f"{_pm(best)}, a lead of {100 * lead:.2f} points, more than "
                f"{LEAD_IN_SPREADS:g}x the pooled seed spread ({100 * noise:.2f})")
    if lead > 0:
        return (f"{winner['label']} leads {who}, {best['label']}, by "
                f"{100 * lead:.2f} points "
                f"({_pm(winner)} against {_pm(best)}), within the noise: under "
                f"{LEAD_IN_SPREADS:g}x the pooled seed spread of {100 * noise:.2f}. "
                "A tie.")
    if -lead > LEAD_IN_SPREADS * noise:
        return (f"{who}, {best['label']}, beats the search's best: "
                f"{_pm(best)} against {_pm(winner)} for {winner['label']}, "
                f"{-100 * lead:.2f} points ahead, more than {LEAD_IN_SPREADS:g}x the "
                f"pooled seed spread ({100 * noise:.2f}); the search found nothing "
                "better than that MobileNet")
    return (f"{who}, {best['label']}, is at least as good as the "
            "search's best: "
            f"{_pm(best)} against {_pm(winner)} for {winner['label']}, within "
            f"{LEAD_IN_SPREADS:g}x the pooled seed spread of {100 * noise:.2f}. "
            "A tie.")


def measured_spread(protocol: Protocol) -> float | None:
    """The seed spread of proxy accuracy measured for ``protocol`` when it is the default
    protocol (``NOISE``) or the search's default (``SEARCH_NOISE``; seed, device, threads
    and data folder aside); None where it has not been measured."""
    fingerprint = protocol.fingerprint()
    for measured, value in ((Protocol(), NOISE), (Protocol(subset=SEARCH_SUBSET), SEARCH_NOISE)):
        if fingerprint == measured.fingerprint():
            return value
    return None


def proxy_noise_note(protocol: Protocol) -> str:
    """One line saying how far a one-seed proxy accuracy of ``protocol`` can be trusted."""
    spread = measured_spread(protocol)
    if spread is None:
        return ("proxy val acc: one training at one seed; this protocol's seed spread is not "
                "measured (`mbnas fidelity` with the same protocol options measures it)")
    return (f"proxy val acc: one training at one seed; this protocol's seed spread is "
            f"{100 * spread:.2f} points (`mbnas fidelity`, docs/proxy-protocol.md), so "
            f"gaps under {LEAD_IN_SPREADS * 100 * spread:.1f} points between these rows are ties")


def near_chance(accuracies: list[float], num_classes: int, noise: float) -> bool:
    """True when every accuracy is within a margin of chance (1 / classes): the margin is
    5 points or 4x the protocol's seed spread ``noise``, whichever is larger."""
    margin = max(0.05, 4 * noise)
    return bool(accuracies) and all(a < 1 / num_classes + margin for a in accuracies)


def _pm(row: dict) -> str:
    return f"{100 * row['mean']:.2f} ± {100 * row['spread']:.2f}%"


def _encode(arch: Arch) -> str:
    from mbnas.arch.encoding import encode

    return encode(arch)
