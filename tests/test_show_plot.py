"""``mbnas show``'s plot (issue 20 item 4): every proxy accuracy with the protocol's seed
spread, the winner marked, each MobileNet labelled with its width and cost, and the
confirmed figures as mean ± spread."""

from __future__ import annotations

import dataclasses

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from mbnas.cli.show import draw  # noqa: E402
from mbnas.outcome import Role, Status, TrialRecord  # noqa: E402


def record(number, acc, macs, role=Role.SEARCH, seed="", name=""):
    return TrialRecord(number=number, name=name, role=role, seed=seed, state=Status.COMPLETE,
                       arch="stem_k3_s2_c8,ir_r1_k3_s1_e1_c16", macs=macs, val_acc=acc)


ROWS = [record(None, 0.80, 216_600_000, Role.REFERENCE, name="mobilenet_v3_large"),
        record(0, 0.78, 149_500_000, Role.SEED, seed="mobilenet_v1 x0.5"),
        record(1, 0.79, 209_100_000, Role.SEED, seed="mobilenet_v2 x0.75"),
        record(14, 0.83, 298_200_000)]
CONFIRMATION = {"protocol": {"epochs": 5, "subset": 6000, "seeds": 2}, "rows": [
    {"label": "trial 14", "kind": "candidate", "macs": 298_200_000, "mean": 0.8347,
     "spread": 0.0088, "seeds": 2, "same_as": ""},
    {"label": "mobilenet_v2 x0.75", "kind": "mobilenet", "macs": 209_100_000, "mean": 0.7995,
     "spread": 0.0057, "seeds": 2, "same_as": ""}]}


def test_the_plot_labels_every_mobilenet_marks_the_winner_and_draws_the_spreads():
    fig, ax = plt.subplots()
    draw(ax, ROWS, 300_000_000, [ROWS[-1]], winner=ROWS[-1], confirmation=CONFIRMATION,
         spread=0.012)
    texts = [t.get_text() for t in ax.texts]
    assert "V1 x0.5, 149.5M" in texts and "V2 x0.75, 209.1M" in texts  # seeds named
    assert "V3-Large x1, 216.6M" in texts  # and the reference
    assert "trial 14 confirmed: 83.5 ± 0.9" in texts
    assert "V2 x0.75 confirmed: 80.0 ± 0.6" in texts
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "winner: trial 14" in legend
    assert "confirmed (5 epochs, 2 seeds): mean ± spread" in legend
    assert "search trials (proxy, ± 1.2 seed spread)" in legend
    # the search trials' error bars are the protocol's spread, 1.2 points each way
    bars = [c for c in ax.containers if hasattr(c, "lines") and c.lines[2]]
    segments = bars[0].lines[2][0].get_segments()
    assert all(abs((s[1][1] - s[0][1]) - 2.4) < 1e-9 for s in segments)
    plt.close(fig)


def test_without_a_measured_spread_no_error_bar_is_made_up():
    fig, ax = plt.subplots()
    draw(ax, ROWS, 300_000_000, [], spread=None)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "search trials (proxy)" in legend
    plt.close(fig)


def test_a_run_priced_by_latency_is_plotted_against_it_too():
    from mbnas.arch.encoding import encode
    from mbnas.arch.seeds import parse_arch
    from mbnas.costs import Metric, register, unregister

    # A latency metric as a table registers it: here, a made-up price per MAC.
    register(Metric("latency", "ms", lambda arch: 5.0, float, lambda v: f"{v:.2f}",
                    "predicted from a table", column="latency_ms"))
    try:
        rows = [dataclasses.replace(r, costs=(("latency_ms", r.macs / 2e7),))
                for r in ROWS]
        v2 = encode(parse_arch("mobilenet_v2", width=0.75))
        confirmation = {**CONFIRMATION, "rows": [
            {**CONFIRMATION["rows"][1], "arch": v2}]}  # priced by the metric: 5 ms
        fig, ax = plt.subplots()
        draw(ax, rows, 12.0, [], winner=rows[-1], confirmation=confirmation, spread=0.012,
             metric="latency")
        texts = [t.get_text() for t in ax.texts]
        assert "V2 x0.75, 10.46 ms" in texts  # a seed, at its recorded latency
        assert any(abs(t.xy[0] - 5.0) < 1e-9 for t in ax.texts
                   if t.get_text().startswith("V2 x0.75 confirmed"))
        assert ax.get_xlabel().startswith("latency, ms")
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert "budget 12.00 ms" in legend and "winner: trial 14" in legend
        plt.close(fig)
    finally:
        unregister("latency")
