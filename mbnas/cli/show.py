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


def plot(rows: list[TrialRecord], budget: int, front: list[TrialRecord], path: Path) -> Path:
    """Accuracy against MACs: search trials, the Pareto front, the references, the budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    done = [r for r in rows if r.complete]
    search = [r for r in done if not r.is_reference]
    refs = [r for r in done if r.is_reference]
    ax.scatter([r.macs / 1e6 for r in search], [100 * r.val_acc for r in search],
               s=18, color="tab:blue", alpha=0.7, label="search trials")
    if front:
        ax.plot([r.macs / 1e6 for r in front], [100 * r.val_acc for r in front],
                color="tab:blue", linewidth=1, label="Pareto front")
    for r in refs:
        ax.scatter([r.macs / 1e6], [100 * r.val_acc], marker="*", s=140,
                   color="tab:red", zorder=3)
        ax.annotate(r.name.replace("mobilenet_", "").upper() + " 1.0",
                    (r.macs / 1e6, 100 * r.val_acc), textcoords="offset points",
                    xytext=(6, -4), fontsize=8, color="tab:red")
    ax.axvline(budget / 1e6, color="gray", linestyle="--", linewidth=1,
               label=f"budget {format_count(budget)}")
    ax.margins(x=0.1)
    ax.set_xlabel("multiply-adds, millions (target spec, papers' convention)")
    ax.set_ylabel("proxy validation accuracy, %")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
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


def show(run: str | Path) -> str:
    """The text ``mbnas show`` prints; also writes ``accuracy_vs_macs.png`` in the run."""
    from mbnas.arch.cost import layer_costs
    from mbnas.arch.encoding import decode
    from mbnas.cli.report import confirmation_table, stage_table
    from mbnas.training.baseline import markdown_table

    run = Path(run)
    rows = read_trials(run)
    best = read_best(run)
    parts = [f"# {run}: {_count_line(rows)}, budget {format_count(best['budget'])} MACs", "",
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
    for r in best.get("references", []):
        acc = f"{100 * r.val_acc:.2f}%" if r.complete else r.state.value
        parts.append(f"reference {r.name}: {acc} at {format_count(r.macs)} MACs "
                     f"(same protocol; references are never the winner)")
    image = plot(rows, best["budget"], best.get("pareto_front", []), run / "accuracy_vs_macs.png")
    parts += ["", f"plot: {image}"]
    return "\n".join(parts)


def add_parser(sub) -> None:
    p = sub.add_parser("show", help="a run's trials, winner and accuracy-vs-MACs plot")
    p.add_argument("run", metavar="RUN", help="run folder, e.g. runs/search-300M")
    p.set_defaults(func=run)


def run(args) -> int:
    print(show(args.run))
    return 0
