"""``mbnas show``: a run's trials, its winner stage by stage, and a plot of accuracy
against MACs with the budget, the Pareto front and the references."""

from __future__ import annotations

import math
from pathlib import Path

from mbnas.outcome import TrialRecord
from mbnas.search.runs import read_best, read_trials
from mbnas.units import format_count


def trials_table(rows: list[TrialRecord]):
    import pandas as pd

    table = pd.DataFrame([{
        "trial": r.label,
        "role": r.role_text,
        "state": r.state.value,
        "val acc %": round(100 * r.val_acc, 2) if not math.isnan(r.val_acc) else None,
        "MACs": format_count(r.macs),
        "params": format_count(r.params, 2),
        "epochs": r.epochs,
        "seconds": r.seconds,
        "weights": "kept" if r.weights == "kept" else "not kept" if r.weights else "",
        "error": (r.error[:50] + "...") if len(r.error) > 50 else r.error,
    } for r in rows])
    return table


def _short(name: str) -> str:
    """``mobilenet_v3_large x1.15`` -> ``V3-Large x1.15``."""
    for long, short in (("mobilenet_v3_large", "V3-Large"), ("mobilenet_v3_small", "V3-Small"),
                        ("mobilenet_v1", "V1"), ("mobilenet_v2", "V2")):
        name = name.replace(long, short)
    return name


def _axis(metric: str) -> tuple[float, str, str]:
    """``(scale, short unit, axis label)`` of the plot's cost axis for ``metric``."""
    from mbnas.costs import metric as known

    if metric == "macs":
        return 1e6, "M", "multiply-adds, millions (target spec, papers' convention)"
    if metric == "params":
        return 1e6, "M", "parameters, millions"
    m = known(metric)
    return 1.0, f" {m.unit}", f"{m.name}, {m.unit} ({m.description or 'predicted'})"


def draw(ax, rows: list[TrialRecord], budget: float | None, front: list[TrialRecord], *,
         winner: TrialRecord | None = None, confirmation: dict | None = None,
         spread: float | None = None, metric: str = "macs") -> None:
    """Accuracy against a cost (``metric``, MACs unless told) on ``ax``: every proxy
    accuracy with the protocol's seed spread (where measured), the Pareto front, the
    winner marked, each MobileNet (seed candidates and references) labelled with its width
    and cost, the confirmed figures as mean ± spread beside them, and the budget (its
    limit of that metric)."""
    from mbnas.arch.encoding import decode
    from mbnas.costs import metric as known

    scale, unit, xlabel = _axis(metric)

    def x(r: TrialRecord) -> float:
        return r.cost(metric) / scale

    def confirmed_x(row: dict) -> float:
        if metric in row:
            return row[metric] / scale
        return known(metric).price(decode(row["arch"])) / scale

    def cost_text(value: float) -> str:
        return format_count(value * scale) if scale != 1 else f"{value:.2f}{unit}"

    done = [r for r in rows if r.complete and not math.isnan(r.cost(metric))]
    search = [r for r in done if not r.is_reference]
    err = None if spread is None else 100 * spread
    ax.errorbar([x(r) for r in search], [100 * r.val_acc for r in search], yerr=err,
                fmt="o", ms=4, color="tab:blue", alpha=0.7, elinewidth=0.8,
                label="search trials (proxy" + (f", ± {err:.1f} seed spread)" if err else ")"))
    if front:
        ax.plot([x(r) for r in front], [100 * r.val_acc for r in front],
                color="tab:blue", linewidth=1, label="Pareto front")
    for r in done:  # the MobileNets: seed candidates and references
        if not (r.is_reference or r.seed):
            continue
        # A named reference is the network at width 1.0; a rival's name holds its width.
        name = _short(r.seed or (r.name if " x" in r.name else f"{r.name} x1"))
        ax.scatter([x(r)], [100 * r.val_acc], marker="*", s=140, color="tab:red",
                   zorder=3)
        ax.annotate(f"{name}, {cost_text(x(r))}", (x(r), 100 * r.val_acc),
                    textcoords="offset points", xytext=(6, -4), fontsize=8, color="tab:red")
    if winner is not None and not math.isnan(winner.cost(metric)):
        ax.scatter([x(winner)], [100 * winner.val_acc], marker="o", s=160,
                   facecolors="none", edgecolors="black", linewidths=1.5, zorder=4,
                   label=f"winner: trial {winner.number}")
    protocol = (confirmation or {}).get("protocol", {})
    label = (f"confirmed ({protocol['epochs']} epochs, {protocol['seeds']} seeds): mean ± "
             "spread" if protocol else "confirmed: mean ± spread")
    for row in (confirmation or {}).get("rows", []):
        if not row["seeds"] or row.get("same_as"):
            continue
        try:
            at = confirmed_x(row)
        except Exception:  # noqa: BLE001 - a metric this row cannot be priced by: not drawn
            continue
        ax.errorbar([at], [100 * row["mean"]], yerr=[100 * row["spread"]],
                    fmt="D", ms=5, color="tab:green", capsize=3, zorder=3, label=label)
        label = None
        ax.annotate(f"{_short(row['label'])} confirmed: {100 * row['mean']:.1f} ± "
                    f"{100 * row['spread']:.1f}", (at, 100 * row["mean"]),
                    textcoords="offset points", xytext=(6, 4), fontsize=7, color="tab:green")
    if budget is not None:  # the limit of this metric (a budget of other costs draws none)
        ax.axvline(budget / scale, color="gray", linestyle="--", linewidth=1,
                   label=f"budget {cost_text(budget / scale)}")
    ax.margins(x=0.1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("validation accuracy, %")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)


def plot(rows: list[TrialRecord], budget: float | None, front: list[TrialRecord], path: Path,
         **marks) -> Path:
    """:func:`draw` as a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    draw(ax, rows, budget, front, **marks)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _weights_line(rows: list[TrialRecord]) -> str:
    """How many finished trials kept their trained weights, and why the others did not."""
    kept = [r.label for r in rows if r.weights == "kept"]
    gone = [r for r in rows if r.weights not in ("", "kept")]
    line = f"trained weights kept for {len(kept)} trial(s): {', '.join(kept) or 'none'}"
    if gone:
        reasons = sorted({r.weights for r in gone})
        line += (f"; {len(gone)} finished trial(s) have none ({'; '.join(reasons)}): "
                 "`mbnas export RUN --trial N --target` exports such a spec untrained")
    return line


def _count_line(rows: list[TrialRecord]) -> str:
    """``10 trials, 1 reference (also 6 rows not trained: 4 repeat, 2 over_budget)``: the
    trials that count toward ``--trials``, as the search command counts them."""
    from collections import Counter

    search = [r for r in rows if not r.is_reference]
    counted = [r for r in search if r.state.counted]
    refs = len(rows) - len(search)
    line = f"{len(counted)} trial{'s' * (len(counted) != 1)}"
    if refs:
        line += f", {refs} reference{'s' * (refs != 1)}"
    rest = Counter(r.state.value for r in search if not r.state.counted)
    if rest:
        line += (f" (also {sum(rest.values())} row(s) not trained: "
                 + ", ".join(f"{n} {state}" for state, n in rest.most_common()) + ")")
    return line


def _budget_text(budgets: dict) -> str:
    """``300.0M MACs`` or ``300.0M MACs and 15.0 ms``; a metric this process does not know
    (registered by another program) as its name."""
    from mbnas.costs import metrics

    known = {m.name: m for m in metrics()}
    return " and ".join(f"{known[n].format(v)} {known[n].unit}" if n in known else f"{n} {v:g}"
                        for n, v in budgets.items())


def show(run: str | Path) -> str:
    """The text ``mbnas show`` prints; also writes ``accuracy_vs_macs.png`` in the run."""
    from mbnas.arch.cost import layer_costs
    from mbnas.arch.encoding import decode
    from mbnas.cli.report import confirmation_table, holdout_note, stage_table
    from mbnas.training.baseline import markdown_table

    run = Path(run)
    rows = read_trials(run)
    best = read_best(run)
    latency = _latency_metric(run)  # registered first: the budget's text names its unit
    budget = _budget_text(best["budgets"])
    parts = [f"# {run}: {_count_line(rows)}, budget {budget}", "",
             markdown_table(trials_table(rows)), ""]
    winner = best.get("winner")
    confirmation = best.get("confirmation")
    if best.get("near_chance"):
        parts += [f"no winner: {best['near_chance']}", ""]
    elif winner:
        arch = decode(winner.arch)
        how = "confirmed, see below" if confirmation and confirmation["verdict"].get("winner") \
            else "by proxy accuracy alone, not confirmed"
        parts += [f"winner: trial {winner.number} ({winner.role_text}), proxy val acc "
                  f"{100 * winner.val_acc:.2f}% ({how})", f"  {winner.arch}", "",
                  stage_table(arch, layer_costs(arch)), ""]
    else:
        parts += ["no winner yet: no search trial finished within budget", ""]
    if confirmation:
        parts += [confirmation_table(confirmation), ""]
    if best.get("proxy_noise"):  # runs before it was recorded have none
        parts += [best["proxy_noise"], ""]
    parts += [_weights_line(rows), ""]
    if best["rivals"]:
        limits = best["budgets"]
        words = format_count(limits["macs"]) if list(limits) == ["macs"] else budget
        parts.append(f"rivals: the MobileNets scaled to the {words} budget (V1, V2 and "
                     "V3-Large at the largest width that fits)")
    for r in best["rivals"]:
        acc = ("not trained under the proxy" if r.get("proxy_val_acc") is None
               else f"proxy {100 * r['proxy_val_acc']:.2f}% ({r.get('trained_as')})")
        parts.append(f"  {r['label']}: {format_count(r['macs'])} MACs, {acc}")
    rivals = {r["label"] for r in best["rivals"]}
    for r in best.get("references", []):
        if r.name in rivals:
            continue
        acc = f"{100 * r.val_acc:.2f}%" if r.complete else r.state.value
        parts.append(f"reference {r.name}: {acc} at {format_count(r.macs)} MACs "
                     f"(same protocol; references are never the winner)")
    if best.get("winner_latency"):
        w = best["winner_latency"]
        parts.append(f"winner's latency: {w['predicted_ms']:.2f} ms predicted, "
                     + (f"not measured: {w.get('not_measured', '')}"
                        if w.get("measured_ms") is None else
                        f"{w['measured_ms']:.2f} ms measured end to end")
                     + f" ({w['measured_on']}{holdout_note(w)})")
    spread = best.get("proxy_spread")  # runs before it was recorded have none
    marks = {"winner": None if best.get("near_chance") else winner,
             "confirmation": confirmation,
             "spread": spread if isinstance(spread, (int, float)) else None}
    images = [plot(rows, best["budget"], best.get("pareto_front", []),
                   run / "accuracy_vs_macs.png", **marks)]
    if latency:  # a run priced by a latency table: the same plot against its predictions
        limit = best["budgets"].get("latency")
        front = (best.get("pareto_front", []) if best.get("pareto_metric") == "latency"
                 else [])
        images.append(plot(rows, limit, front, run / "accuracy_vs_latency.png",
                           metric="latency", **marks))
    parts += [""] + [f"plot: {image}" for image in images]
    return "\n".join(parts)


def _latency_metric(run: Path) -> bool:
    """Whether the run was priced by a latency table that is still there (its metric is
    registered from it, to price the confirmed networks too)."""
    import json

    try:
        table = json.loads((run / "run.json").read_text()).get("latency_table")
    except (OSError, ValueError):
        return False
    if not table or not Path(table).exists():
        return False
    from mbnas.latency.metric import use_table

    use_table(table)
    return True


def add_parser(sub) -> None:
    p = sub.add_parser("show", help="a run's trials, winner and accuracy-vs-MACs plot")
    p.add_argument("run", metavar="RUN", help="run folder, e.g. runs/search-300M")
    p.set_defaults(func=run)


def run(args) -> int:
    print(show(args.run))
    return 0
