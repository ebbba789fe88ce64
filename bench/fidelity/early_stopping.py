"""Does stopping a proxy training early keep the right candidates?  Replayed on measured curves.

``mbnas search`` can hand its trials to Ray Tune's ASHA scheduler (``grace_period=1``,
``reduction_factor=2``): a trial whose validation accuracy after epoch 1 (or 2) is below
the median of those recorded at that epoch so far stops there.  Whether that saves time
or loses the winner depends on how well the early epochs rank the final one.  This script
answers from the fidelity panel's measured per-epoch accuracies (``val_accs`` of
``bench/fidelity/PROTOCOL/fidelity.csv``, every network at every seed), without training:

1. Kendall's tau between each epoch's accuracy and the last epoch's, and against the
   higher-fidelity reference, at each seed;
2. ASHA's rule replayed on random searches: ``--trials`` networks of the panel drawn in
   random order (one seed each), each stopped where ASHA's asynchronous rule would stop
   it, counting how often the candidate that the full proxy would have crowned (best last
   epoch), or the best by the reference, is stopped, and the reference accuracy of the
   candidate each way picks, beside a search that trains every trial to the end.

    python bench/fidelity/early_stopping.py bench/fidelity/default bench/fidelity/reference-18000x5

The replay is sequential (one trial finishes before the next starts); with trials in
parallel ASHA decides on fewer recorded values, which makes it noisier, not better.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from mbnas.training.baseline import kendall_tau  # noqa: E402
from mbnas.training.fidelity import completed, read_rows  # noqa: E402


def completed_rows(folder: Path) -> pd.DataFrame:
    """The completed trainings of a fidelity folder's ``fidelity.csv``."""
    return pd.DataFrame([r for r in read_rows(folder / "fidelity.csv") if completed(r)])


def curves(folder: Path) -> pd.DataFrame:
    """One row per (network, seed) with its per-epoch validation accuracies."""
    rows = completed_rows(folder)
    accs = rows.val_accs.str.split(";", expand=True).astype(float)
    accs.columns = [f"e{i + 1}" for i in accs.columns]
    return pd.concat([rows[["name", "seed", "macs"]].reset_index(drop=True),
                      accs.reset_index(drop=True)], axis=1)


def asha_stops(values: np.ndarray, rungs: list[int], reduction_factor: int = 2) -> np.ndarray:
    """The epoch at which each trial, in the order given, stops under asynchronous
    successive halving (Ray Tune's ASHAScheduler rule: at a rung, a trial below the
    ``1 - 1/reduction_factor`` percentile of the values recorded there so far, its own
    included, stops).  ``values[i, e]`` is trial i's accuracy after epoch e + 1."""
    epochs = values.shape[1]
    stopped = np.full(len(values), epochs)
    recorded: dict[int, list[float]] = {rung: [] for rung in rungs}
    for i, curve in enumerate(values):
        for rung in rungs:
            recorded[rung].append(curve[rung - 1])
            cutoff = np.nanpercentile(recorded[rung], (1 - 1 / reduction_factor) * 100)
            if curve[rung - 1] < cutoff:
                stopped[i] = rung
                break
    return stopped


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("proxy", type=Path)
    parser.add_argument("reference", type=Path)
    parser.add_argument("--trials", type=int, default=10,
                        help="networks per replayed search (the quick start trains 10)")
    parser.add_argument("--budget", type=float, default=300e6,
                        help="draw only networks of at most this many MACs, as a search "
                             "under this budget would (default 300M)")
    parser.add_argument("--searches", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    proxy = curves(args.proxy)
    truth = completed_rows(args.reference).groupby("name").val_acc.mean()
    proxy = proxy[proxy.name.isin(truth.index)]
    within = proxy[proxy.macs <= args.budget]
    epochs = [c for c in proxy.columns if c.startswith("e")]
    last = epochs[-1]
    command = json.loads((args.proxy / "protocol.json").read_text())["command"]
    print(f"{args.proxy}: {command}")
    print(f"{proxy.name.nunique()} networks, seeds {sorted(map(int, proxy.seed.unique()))}, "
          f"{len(epochs)} epochs each")

    print("\nKendall's tau of each epoch's accuracy")
    print(f"{'seed':>6}  " + "  ".join(f"{e + ' vs ' + last:>10} {e + ' vs ref':>10}"
                                      for e in epochs))
    for seed, group in proxy.groupby("seed"):
        cells = []
        for e in epochs:
            cells.append(f"{kendall_tau(list(group[e]), list(group[last])):>10.3f} "
                         f"{kendall_tau(list(group[e]), list(truth[group.name])):>10.3f}")
        print(f"{seed:>6}  " + "  ".join(cells))

    names = sorted(within.name.unique())
    by_name = {name: group[epochs].to_numpy() for name, group in within.groupby("name")}
    rungs = [1, 2][: len(epochs) - 1]

    def replay(trials: int, early_stopping: bool) -> dict[str, float]:
        rng = np.random.default_rng(args.seed)
        lost_proxy_best = lost_truth_best = 0
        crowned, trained = [], []
        for _ in range(args.searches):
            drawn = rng.choice(names, size=min(trials, len(names)), replace=False)
            values = np.stack([by_name[n][rng.integers(len(by_name[n]))] for n in drawn])
            stops = asha_stops(values, rungs) if early_stopping else np.full(len(drawn),
                                                                              len(epochs))
            finished = stops == len(epochs)
            final = values[:, -1]
            ref = truth[drawn].to_numpy()
            lost_proxy_best += not finished[np.argmax(final)]
            lost_truth_best += not finished[np.argmax(ref)]
            crowned.append(ref[np.argmax(np.where(finished, final, -np.inf))])
            trained.append(stops.sum() / len(epochs))
        n = args.searches
        return {"lost_proxy_best": lost_proxy_best / n, "lost_truth_best": lost_truth_best / n,
                "crowned": float(np.mean(crowned)), "trained": float(np.mean(trained))}

    full = replay(args.trials, early_stopping=False)
    asha = replay(args.trials, early_stopping=True)
    more = round(args.trials * full["trained"] / asha["trained"])
    asha_more = replay(more, early_stopping=True)
    print(f"\nASHA (grace 1, reduction factor 2) replayed on {args.searches:,} random searches "
          f"drawn from the {len(names)} networks within {args.budget / 1e6:g}M MACs, one seed each "
          f"(reference accuracy of the candidate each crowns, by its last epoch):")
    print(f"  {args.trials} trials to the end: {full['trained']:.1f} trainings' worth, "
          f"crowned {full['crowned']:.2f}%")
    print(f"  {args.trials} trials under ASHA: {asha['trained']:.1f} trainings' worth, "
          f"crowned {asha['crowned']:.2f}%; the full proxy's winner stopped early in "
          f"{asha['lost_proxy_best']:.0%} of searches, the reference's best of those drawn "
          f"in {asha['lost_truth_best']:.0%}")
    print(f"  {more} trials under ASHA (about the same training): "
          f"{asha_more['trained']:.1f} trainings' worth, crowned {asha_more['crowned']:.2f}%")

if __name__ == "__main__":
    main()
