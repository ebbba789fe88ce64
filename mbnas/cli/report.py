"""Plain-text tables of an architecture and its cost (no pandas: ``count`` stays light)."""

from __future__ import annotations

from mbnas.arch.cost import ZERO, Cost, LayerCost
from mbnas.arch.encoding import encode_stage
from mbnas.arch.spec import Arch, resolve
from mbnas.units import format_count


def _text_table(header: list[str], rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def stage_rows(arch: Arch, layers: list[LayerCost]) -> list[dict]:
    """One row per stem, stage, head and classifier: what it is, its output, its cost."""
    net = resolve(arch)
    totals: dict[str, Cost] = {}
    for layer in layers:
        totals[layer.group] = totals.get(layer.group, ZERO) + layer.cost
    outputs = {b.name.split(".", 1)[0]: (b.out_channels, b.out_size) for b in net.blocks}
    # The fully connected layers after pooling: V3's hidden fc, then the classifier.
    fcs = {name: units for name, _, units in net.fcs()}
    outputs.update({name: (units, 1) for name, units in fcs.items()})
    described = {"stem": f"conv k{arch.stem.kernel} s{arch.stem.stride}",
                 "head": "conv 1x1", "hidden_fc": "avgpool + fc",
                 "classifier": "fc" if "hidden_fc" in fcs else "avgpool + fc"}
    described.update({f"stage{i}": encode_stage(s) for i, s in enumerate(arch.stages, 1)})
    return [{"layer": group, "spec": described[group], "channels": outputs[group][0],
             "size": outputs[group][1], "macs": cost.macs, "params": cost.params,
             "weights": cost.weights} for group, cost in totals.items()]


def latency_by_layer(breakdown) -> dict[str, float]:
    """A table's per-block prediction (:meth:`mbnas.latency.table.Table.breakdown`)
    summed per row of :func:`stage_rows` (the classifier's entry holds the pool and the
    fully connected layers), and the call."""
    out: dict[str, float] = {}
    for part in breakdown:
        group = part.layer.split(".", 1)[0]
        out[group] = out.get(group, 0.0) + part.ms
    return out


def holdout_note(winner_latency: dict) -> str:
    """What to expect of a winner's predicted latency: how close its table comes to its
    own networks, each held out (mbnas.latency.table.Holdout); "" where it cannot say."""
    h = winner_latency.get("holdout")
    if not h:
        return ""
    return (f"; the table predicts its {h['networks']} networks, each held out, to a median "
            f"{100 * h['median_error']:.1f}% ({100 * h['within_10']:.0f}% within ±10%)")


def stage_table(arch: Arch, layers: list[LayerCost],
                latency: dict[str, float] | None = None) -> str:
    """The stage-by-stage cost table that ``mbnas count`` prints, with totals; with
    ``latency`` (:func:`latency_by_layer`), each row's predicted milliseconds too."""
    rows = stage_rows(arch, layers)
    macs = sum(r["macs"] for r in rows)
    params = sum(r["params"] for r in rows)
    weights = sum(r["weights"] for r in rows)
    header = ["layer", "spec", "output", "MACs", "%", "params", "%"]
    body = [[r["layer"], r["spec"], f"{r['channels']}x{r['size']}x{r['size']}",
             format_count(r["macs"], 2), f"{100 * r['macs'] / macs:.1f}%",
             format_count(r["params"], 2), f"{100 * r['params'] / params:.1f}%"] for r in rows]
    if latency is not None:
        total = sum(latency.values())
        header += ["ms", "%"]
        for r, cells in zip(rows, body, strict=True):
            ms = latency.get(r["layer"])
            cells += ["" if ms is None else f"{ms:.3f}",
                      "" if ms is None else f"{100 * ms / total:.1f}%"]
        body.append(["call", "per-call cost + calibration", "", "", "", "", "",
                     f"{latency.get('call', 0.0):.3f}",
                     f"{100 * latency.get('call', 0.0) / total:.1f}%"])
    table = _text_table(header, body, right=set(range(3, len(header))))
    summary = (f"{format_count(macs)} MACs, {format_count(params, 2)} params "
               f"({format_count(weights, 2)} weights) at width {arch.width:g}, "
               f"{arch.resolution}x{arch.resolution}, {arch.num_classes} classes")
    if latency is not None:
        summary += f"; {sum(latency.values()):.2f} ms predicted"
    note = ("MACs count convolutions and the classifier, one per multiply-add "
            "(the papers' convention).")
    return f"{table}\n\n{summary}\n{note}"


def confirmation_table(confirmation: dict) -> str:
    """The confirmation's figures: each architecture's mean ± seed spread, and the verdict."""
    import math

    p = confirmation["protocol"]
    subset = f"{p['subset']:,} images" if p.get("subset") else "all images"
    header = ["confirmed", "val acc (mean ± spread)", "seeds", "proxy val acc", "MACs",
              "params"]
    body = []
    for r in sorted(confirmation["rows"], key=lambda r: -(r["mean"] if r["seeds"] else -1)):
        mean = (f"{100 * r['mean']:.2f} ± {100 * r['spread']:.2f}%" if r["seeds"]
                else "not trained")
        proxy = "" if math.isnan(r["proxy_val_acc"]) else f"{100 * r['proxy_val_acc']:.2f}%"
        label = f"{r['label']} (= {r['same_as']})" if r.get("same_as") else r["label"]
        body.append([label, mean, str(r["seeds"]), proxy, format_count(r["macs"]),
                     format_count(r["params"], 2)])
    table = _text_table(header, body, right={1, 2, 3, 4, 5})
    return (f"confirmation: {p['epochs']} epochs on {subset}, {p['seeds']} seeds "
            f"(spread: sample standard deviation over seeds)\n{table}\n"
            f"{confirmation['verdict']['text']}")
