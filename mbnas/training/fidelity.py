"""``mbnas fidelity``: how far a proxy protocol can be trusted on a data set.

A *panel* of architectures is trained under the protocol at two or more seeds:

- the canonical networks with a published ImageNet top-1 (``baseline.PUBLISHED``), and
- members of the default search space just under a budget (drawn with a fixed seed and
  walked under the budget by :meth:`SearchSpace.repair`, as a search would), which are
  what a search actually has to tell apart.

Three figures come out: the *seed spread* (the same architecture, another seed), the
*rank agreement* with a higher-fidelity training of the same panel on the same data
(Kendall's tau over the panel, and the share of MAC-matched pairs put in the reference's
order), and, on the canonical networks, tau against ImageNet top-1 beside the tau of
counting MACs or parameters alone.  The reference is a data file shipped in
``mbnas/training/data/`` that records the command which made it.

Every finished training is one row of ``fidelity.csv`` in the output folder, written as
it ends; a rerun of the same command skips the rows already there.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mbnas.arch.cost import count
from mbnas.arch.encoding import decode, encode
from mbnas.arch.seeds import parse_arch
from mbnas.arch.spec import Arch
from mbnas.errors import MbnasError
from mbnas.files import write_csv, write_json, write_text
from mbnas.outcome import Status
from mbnas.stats import Spread, kendall_tau, pooled_std, spread, tau_ceiling
from mbnas.training.baseline import PUBLISHED, markdown_table
from mbnas.training.protocol import Protocol

PANEL_BUDGET = 300_000_000  # the quick start's budget
PANEL_SIZE = 8  # members of the space
PANEL_BAND = 0.15  # ... within 15% below the budget
PANEL_SEED = 0
MAC_MATCH = 0.10  # two architectures within 10% MACs of each other are "MAC-matched"
LAST_EPOCHS = 2  # the alternative score: mean validation accuracy of the last epochs
REFERENCE_DIR = Path(__file__).parent / "data"
COLUMNS = ["name", "group", "arch", "macs", "params", "imagenet_top1", "seed", "status",
           "val_acc", "val_accs", "test_acc", "train_s"]


# --- the panel -------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """One architecture of the panel: ``group`` is ``canonical`` or ``space``."""

    name: str
    group: str
    arch: Arch
    top1: float | None = None  # published ImageNet top-1 (%), canonical networks only


def canonical_members(models: Sequence[tuple[str, float]] | None = None) -> list[Member]:
    """The networks of ``baseline.PUBLISHED`` (or those of ``models``), with their top-1."""
    return [Member(f"{name} {width:g}", "canonical", parse_arch(name, width=width),
                   PUBLISHED[(name, width)].top1)
            for name, width in (models if models is not None else PUBLISHED)]


def space_members(space, *, budget: int = PANEL_BUDGET, size: int = PANEL_SIZE,
                  band: float = PANEL_BAND, seed: int = PANEL_SEED,
                  attempts_per_member: int = 200) -> list[Member]:
    """``size`` distinct members of ``space`` costing between ``(1 - band) * budget`` and
    ``budget`` MACs: uniform random samples (seeded), over-budget ones repaired as a search
    repairs them, samples that land below the band dropped.  Bounded: it gives up (an
    error naming the band) after ``attempts_per_member * size`` samples."""
    rng = random.Random(seed)
    low = (1 - band) * budget
    found: dict[str, Arch] = {}
    for _ in range(attempts_per_member * size):
        if len(found) == size:
            break
        params = space.sample(lambda _name, choices: rng.choice(list(choices)))
        arch = space.arch(params)
        if count(arch).macs > budget:
            arch = space.arch(space.repair(params, budget))
        if low <= count(arch).macs <= budget:
            found.setdefault(encode(arch), arch)
    if len(found) < size:
        raise MbnasError(f"panel: found {len(found)} of {size} members of space "
                         f"{space.name!r} between {low / 1e6:.0f}M and {budget / 1e6:.0f}M "
                         "MACs; lower --panel-size or raise --panel-budget")
    return [Member(f"space-{i}", "space", arch) for i, arch in enumerate(found.values(), 1)]


# --- statistics -------------------------------------------------------------------------


def matched_pairs(macs: Sequence[float], tolerance: float = MAC_MATCH) -> list[tuple[int, int]]:
    """Index pairs whose MACs are within ``tolerance`` of the larger of the two."""
    return [(i, j) for i in range(len(macs)) for j in range(i + 1, len(macs))
            if abs(macs[i] - macs[j]) <= tolerance * max(macs[i], macs[j])]


def pair_agreement(scores: Sequence[float], reference: Sequence[float],
                   pairs: Sequence[tuple[int, int]]) -> float:
    """The share of ``pairs`` that ``scores`` order as ``reference`` does (a tie on either
    side counts one half); nan without pairs."""
    if not pairs:
        return math.nan
    agree = 0.0
    for i, j in pairs:
        a, b = scores[i] - scores[j], reference[i] - reference[j]
        agree += 0.5 if a == 0 or b == 0 else float((a > 0) == (b > 0))
    return agree / len(pairs)


# --- training -----------------------------------------------------------------------------


def train_member(member: Member, protocol: Protocol, *, test: bool = False,
                 progress=None) -> dict:
    """Train ``member``'s proxy under ``protocol`` (its seed); one ``fidelity.csv`` row."""
    from mbnas.training.proxy import load_data, proxy_trainer

    start = time.perf_counter()
    cost = count(member.arch)
    trainer = proxy_trainer(member.arch, protocol, progress=progress)
    result = trainer.fit()
    ok = result.status is Status.COMPLETE
    test_acc = 100 * trainer.evaluate(load_data(protocol).test) if ok and test else math.nan
    return {"name": member.name, "group": member.group, "arch": encode(member.arch),
            "macs": cost.macs, "params": cost.params,
            "imagenet_top1": math.nan if member.top1 is None else member.top1,
            "seed": protocol.train.seed, "status": result.status.value,
            "val_acc": round(100 * result.val_acc, 2) if ok else math.nan,
            "val_accs": ";".join(f"{100 * e.val_acc:.2f}" for e in result.epochs),
            "test_acc": round(test_acc, 2), "train_s": round(time.perf_counter() - start, 1)}


def _train_job(name: str, group: str, arch: str, top1, protocol: dict, test: bool) -> dict:
    """A picklable :func:`train_member` for worker processes."""
    member = Member(name, group, decode(arch), top1)
    return train_member(member, Protocol.from_dict(protocol), test=test)


def read_rows(path: Path) -> list[dict]:
    """Rows of a ``fidelity.csv`` (or a reference file: ``#`` lines are comments)."""
    if not path.exists():
        return []
    with path.open(newline="") as f:
        lines = [line for line in f if not line.startswith("#")]
    rows = []
    try:
        for row in csv.DictReader(lines):
            for key in ("macs", "params", "seed"):
                row[key] = int(row[key])
            for key in ("imagenet_top1", "val_acc", "test_acc", "train_s"):
                row[key] = float(row[key]) if row[key] not in ("", None) else math.nan
            rows.append(row)
    except (KeyError, TypeError, ValueError) as err:
        raise MbnasError(f"{path}: not a fidelity table (row {len(rows) + 1}: "
                         f"{type(err).__name__} {err}); columns: {', '.join(COLUMNS)}") from None
    return rows


def write_rows(rows: list[dict], path: Path, header: str = "") -> None:
    """Write atomically: an interruption never leaves half a file."""
    write_csv(path, rows, COLUMNS, header)


def _flat(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def check_out_dir(out_dir: Path, protocol: Protocol) -> None:
    """Refuse to mix protocols in one folder (the rows would not be comparable)."""
    path = out_dir / "protocol.json"
    if not path.exists():
        return
    try:
        stored = json.loads(path.read_text())["protocol"]
    except (ValueError, KeyError):
        raise MbnasError(f"{path} is damaged; move {out_dir} away or pick another --out") \
            from None
    asked = _flat(protocol.fingerprint())
    stored = _flat(stored) if isinstance(stored, dict) else {}
    if stored != asked:
        changed = sorted(k for k in set(stored) | set(asked) if stored.get(k) != asked.get(k))
        raise MbnasError(f"{out_dir} holds trainings under another protocol (differs in "
                         f"{', '.join(changed)}); rerun with the same options to resume, or "
                         "pick another --out")


def run_trainings(panel: list[Member], protocol: Protocol, seeds: Sequence[int], *,
                  out_dir: Path, command: str = "", jobs: int = 1, test: bool = False,
                  log: Callable[[str], None] = print, progress=None) -> list[dict]:
    """Train every (member, seed) not yet in ``out_dir/fidelity.csv``; returns all rows of
    the panel.  With ``jobs`` > 1, that many worker processes train at once."""
    check_out_dir(out_dir, protocol)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = out_dir / "protocol.json"
    if not meta.exists():
        meta.write_text(json.dumps({"protocol": protocol.fingerprint(), "command": command},
                                   indent=2) + "\n")
    path = out_dir / "fidelity.csv"
    rows = read_rows(path)
    done = {(r["arch"], r["seed"]) for r in rows}
    todo = [(m, s) for s in seeds for m in panel if (encode(m.arch), s) not in done]
    skipped = len(panel) * len(seeds) - len(todo)
    if skipped:
        log(f"resuming: {skipped} training(s) already in {path}, {len(todo)} to go")

    def finished(i: int, row: dict) -> None:
        rows.append(row)
        write_rows(rows, path)  # after each training: nothing lost
        acc = f"{row['val_acc']:.2f}%" if completed(row) else row["status"]
        log(f"[{i}/{len(todo)}] {row['name']} seed {row['seed']}: val {acc} "
            f"({row['macs'] / 1e6:.1f}M MACs) in {row['train_s']}s")

    def at_seed(s: int) -> Protocol:
        return dataclasses.replace(protocol, train=dataclasses.replace(protocol.train, seed=s))

    if jobs <= 1 or len(todo) <= 1:
        for i, (member, s) in enumerate(todo, start=1):
            log(f"[{i}/{len(todo)}] {member.name} seed {s} ...")
            finished(i, train_member(member, at_seed(s), test=test,
                                     progress=progress() if progress else None))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        context = multiprocessing.get_context("spawn")  # no forked torch thread pools
        with ProcessPoolExecutor(jobs, mp_context=context) as pool:
            futures = [pool.submit(_train_job, m.name, m.group, encode(m.arch), m.top1,
                                   at_seed(s).to_dict(), test) for m, s in todo]
            for i, future in enumerate(as_completed(futures), start=1):
                finished(i, future.result())
    wanted = {encode(m.arch) for m in panel}
    return [r for r in rows if r["arch"] in wanted and r["seed"] in set(seeds)]


# --- the report ------------------------------------------------------------------------------


def reference_path(dataset: str) -> Path:
    return REFERENCE_DIR / f"fidelity_reference_{dataset}.csv"


def save_reference(rows: list[dict], path: Path, *, command: str, protocol: Protocol) -> None:
    """A reference file: the rows, after comment lines naming the command and protocol."""
    header = (f"# mbnas fidelity reference ({protocol.dataset}): the panel trained at higher "
              "fidelity; made by\n"
              f"# {command}\n"
              f"# protocol: {json.dumps(protocol.fingerprint(), sort_keys=True)}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_rows(sorted(rows, key=lambda r: (r["group"], r["name"], r["seed"])), path, header)


def reference_command(path: Path) -> str:
    """The command a reference file says made it."""
    with path.open() as f:
        lines = [line[1:].strip() for line in f if line.startswith("#")]
    return lines[1] if len(lines) > 1 else ""


def _mean_of_last(val_accs: str, last: int) -> float:
    values = [float(v) for v in val_accs.split(";") if v]
    return statistics.fmean(values[-last:]) if values else math.nan


@dataclass
class Report:
    table: list[dict]  # one row per architecture
    figures: dict  # name -> value, see summarise()


def summarise(rows: list[dict], reference: list[dict] | None = None) -> Report:
    """Per architecture: mean, std and range over seeds, and the reference's accuracy;
    the panel's figures (seed spread, taus, pair agreement) in ``figures``."""
    by_arch: dict[str, list[dict]] = {}
    for r in rows:
        if completed(r):
            by_arch.setdefault(r["arch"], []).append(r)
    ref_by_seed: dict[str, dict[int, float]] = {}  # arch -> seed -> reference accuracy
    for r in reference or []:
        if completed(r):
            ref_by_seed.setdefault(r["arch"], {})[r["seed"]] = r["val_acc"]
    table = []
    for arch, group in by_arch.items():
        first = group[0]
        s = spread([r["val_acc"] for r in group])
        last = spread([_mean_of_last(r["val_accs"], LAST_EPOCHS) for r in group])
        table.append({
            "name": first["name"], "group": first["group"],
            "macs_M": round(first["macs"] / 1e6, 1), "params_M": round(first["params"] / 1e6, 2),
            "imagenet_top1": first["imagenet_top1"], "val_mean": round(s.mean, 2),
            "val_std": round(s.std, 2), "val_range": round(s.range, 2),
            "seeds": s.n, f"last{LAST_EPOCHS}_mean": round(last.mean, 2),
            "reference": round(statistics.fmean(ref_by_seed[arch].values()), 2)
            if arch in ref_by_seed else math.nan,
            "arch": arch, "_by_seed": {r["seed"]: r for r in group},
        })
    table.sort(key=lambda t: (t["group"], -t["macs_M"]))
    figures = _figures(table, by_arch)
    figures.update(_reference_figures(table, ref_by_seed))
    for t in table:
        del t["_by_seed"]
    return Report(table, figures)


def _figures(table: list[dict], by_arch: dict[str, list[dict]]) -> dict:
    f: dict = {}
    f["architectures"] = len(table)
    f["trainings"] = sum(len(g) for g in by_arch.values())
    f["pooled_std"] = pooled_std([[r["val_acc"] for r in g] for g in by_arch.values()])
    f["architectures_with_seeds"] = sum(len(g) > 1 for g in by_arch.values())
    ranges = [t["val_range"] for t in table if t["seeds"] > 1]
    f["mean_range"] = statistics.fmean(ranges) if ranges else math.nan
    f["max_range"] = max(ranges) if ranges else math.nan
    seeds = sorted({s for t in table for s in t["_by_seed"]})
    f["seeds"] = seeds

    ref = [t for t in table if t["reference"] == t["reference"]]
    f["reference_n"] = len(ref)
    if len(ref) >= 2:
        refs = [t["reference"] for t in ref]
        f["tau_reference"] = kendall_tau([t["val_mean"] for t in ref], refs)
        # Counting is the baseline a proxy must beat (White et al., ICLR 2022 blog track).
        f["tau_reference_macs"] = kendall_tau([t["macs_M"] for t in ref], refs)
        f["tau_reference_params"] = kendall_tau([t["params_M"] for t in ref], refs)
        f[f"tau_reference_last{LAST_EPOCHS}"] = kendall_tau(
            [t[f"last{LAST_EPOCHS}_mean"] for t in ref], refs)
        # One seed alone is what a search sees; only seeds that trained every architecture.
        complete = [s for s in seeds if all(s in t["_by_seed"] for t in ref)]
        f["tau_reference_per_seed"] = spread([
            kendall_tau([t["_by_seed"][s]["val_acc"] for t in ref], refs) for s in complete])
        pairs = matched_pairs([t["macs_M"] for t in ref])
        f["matched_pairs"] = len(pairs)
        f["pair_agreement"] = pair_agreement([t["val_mean"] for t in ref], refs, pairs)
        f["pair_agreement_per_seed"] = spread([
            pair_agreement([t["_by_seed"][s]["val_acc"] for t in ref], refs, pairs)
            for s in complete])
        space = [t for t in ref if t["group"] == "space"]
        if len(space) >= 2:
            refs = [t["reference"] for t in space]
            f["tau_reference_space"] = kendall_tau([t["val_mean"] for t in space], refs)
            f["tau_reference_space_macs"] = kendall_tau([t["macs_M"] for t in space], refs)
            f["tau_reference_space_params"] = kendall_tau([t["params_M"] for t in space],
                                                          refs)

    canon = [t for t in table if t["imagenet_top1"] == t["imagenet_top1"]]
    f["canonical_n"] = len(canon)
    if len(canon) >= 2:
        top1 = [t["imagenet_top1"] for t in canon]
        f["tau_imagenet"] = kendall_tau([t["val_mean"] for t in canon], top1)
        f["tau_imagenet_per_seed"] = spread([
            kendall_tau([t["_by_seed"][s]["val_acc"] for t in canon], top1) for s in seeds
            if all(s in t["_by_seed"] for t in canon)])
        f["tau_imagenet_macs"] = kendall_tau([t["macs_M"] for t in canon], top1)
        f["tau_imagenet_params"] = kendall_tau([t["params_M"] for t in canon], top1)
        with_ref = [t for t in canon if t["reference"] == t["reference"]]
        if len(with_ref) >= 2:
            f["tau_imagenet_of_reference"] = kendall_tau(
                [t["reference"] for t in with_ref], [t["imagenet_top1"] for t in with_ref])
    return f


def _reference_figures(table: list[dict], ref_by_seed: dict[str, dict[int, float]]) -> dict:
    """How far the reference agrees with itself: its seed spread, and Kendall's tau
    between its first two seeds over the architectures it trained at both, beside the
    proxy's tau over the same ones (a proxy cannot be expected to rank them better); and
    the tau that a proxy ranking every architecture exactly right would be expected to
    reach against this reference, given its seed spread (:func:`mbnas.stats.tau_ceiling`)."""
    f: dict = {}
    seeds = {t["arch"]: ref_by_seed[t["arch"]] for t in table if t["arch"] in ref_by_seed}
    twice = [t for t in table if len(seeds.get(t["arch"], {})) >= 2]
    f["reference_architectures_with_seeds"] = len(twice)
    f["reference_pooled_std"] = pooled_std([list(s.values()) for s in seeds.values()])
    if len(twice) >= 2:
        a, b = sorted(set.intersection(*(set(seeds[t["arch"]]) for t in twice)))[:2]
        f["reference_seeds_compared"] = [a, b]
        f["tau_reference_seeds"] = kendall_tau([seeds[t["arch"]][a] for t in twice],
                                               [seeds[t["arch"]][b] for t in twice])
        f["tau_reference_same"] = kendall_tau(
            [t["val_mean"] for t in twice], [t["reference"] for t in twice])
    sigma = f["reference_pooled_std"]
    if sigma == sigma:  # measured: how well could a proxy agree with this reference at all?
        def ceiling(rows: list[dict]) -> tuple[float, float, float]:
            return tau_ceiling([t["reference"] for t in rows],
                               [sigma / math.sqrt(len(seeds[t["arch"]])) for t in rows])

        f["tau_reference_ceiling"] = ceiling([t for t in table if t["arch"] in seeds])
        space = [t for t in table if t["arch"] in seeds and t["group"] == "space"]
        if len(space) >= 2:
            f["tau_reference_ceiling_space"] = ceiling(space)
    return f


def _fmt(value, digits: int = 3) -> str:
    if isinstance(value, Spread):
        if value.n == 0:
            return "n/a"
        if value.n == 1:
            return f"{value.mean:.{digits}f} (one seed)"
        return f"{value.mean:.{digits}f} ± {value.std:.{digits}f} (range {value.range:.{digits}f})"
    if isinstance(value, float):
        return "n/a" if value != value else f"{value:.{digits}f}"
    return str(value)


def figures_lines(f: dict) -> list[str]:
    """The panel's figures as plain-text lines (also the markdown list)."""
    lines = [f"seed spread of proxy val accuracy over {len(f['seeds'])} seed(s) "
             f"({', '.join(map(str, f['seeds']))}), {f['architectures_with_seeds']} of "
             f"{f['architectures']} architectures at two or more: "
             f"pooled std {_fmt(f['pooled_std'], 2)} points, max-min mean "
             f"{_fmt(f['mean_range'], 2)}, largest {_fmt(f['max_range'], 2)}"]
    if f.get("reference_n", 0) >= 2:
        lines += [
            f"Kendall's tau vs the reference over {f['reference_n']} architectures: "
            f"{_fmt(f['tau_reference'])} (seed mean); one seed alone: "
            f"{_fmt(f['tau_reference_per_seed'])}",
            f"  ranking by MACs alone: {_fmt(f['tau_reference_macs'])}, by parameters alone: "
            f"{_fmt(f['tau_reference_params'])}",
            f"  ranking by the mean of the last {LAST_EPOCHS} epochs: "
            f"{_fmt(f[f'tau_reference_last{LAST_EPOCHS}'])}",
            f"  space members alone: {_fmt(f.get('tau_reference_space', math.nan))} (MACs "
            f"alone {_fmt(f.get('tau_reference_space_macs', math.nan))}, parameters alone "
            f"{_fmt(f.get('tau_reference_space_params', math.nan))})",
            f"MAC-matched pairs (within {MAC_MATCH:.0%} MACs) in the reference's order: "
            f"{_fmt(f['pair_agreement'], 2)} of {f['matched_pairs']} (seed mean); one seed "
            f"alone: {_fmt(f['pair_agreement_per_seed'], 2)}"]
        if f.get("reference_architectures_with_seeds", 0) >= 2:
            a, b = f["reference_seeds_compared"]
            lines.append(
                f"the reference against itself, over the "
                f"{f['reference_architectures_with_seeds']} architectures it trained at two "
                f"or more seeds: seed spread {_fmt(f['reference_pooled_std'], 2)} points, "
                f"Kendall's tau between its seeds {a} and {b} {_fmt(f['tau_reference_seeds'])} "
                f"(the proxy against the reference over the same: "
                f"{_fmt(f['tau_reference_same'])})")
        if "tau_reference_ceiling" in f:
            mean, low, high = f["tau_reference_ceiling"]
            line = (f"a proxy that ranked every architecture exactly right would agree with "
                    f"this reference at about tau {mean:.2f} (90% of draws {low:.2f} to "
                    f"{high:.2f}), given its seed spread")
            if "tau_reference_ceiling_space" in f:
                line += (f"; over the space members alone "
                         f"{f['tau_reference_ceiling_space'][0]:.2f}")
            lines.append(line)
    else:
        lines.append("no reference for this panel: rank agreement not measured")
    if f.get("canonical_n", 0) >= 2:
        lines.append(
            f"canonical networks ({f['canonical_n']}), Kendall's tau vs ImageNet top-1: proxy "
            f"{_fmt(f['tau_imagenet'])} (seed mean; one seed alone "
            f"{_fmt(f['tau_imagenet_per_seed'])}), MACs alone {_fmt(f['tau_imagenet_macs'])}, "
            f"parameters alone {_fmt(f['tau_imagenet_params'])}"
            + (f", reference {_fmt(f['tau_imagenet_of_reference'])}"
               if "tau_imagenet_of_reference" in f else ""))
    return lines


def write_report(report: Report, out_dir: Path, *, protocol: Protocol, command: str,
                 reference_command: str = "") -> None:
    """``summary.csv`` (one row per architecture), ``fidelity.md`` and ``figures.json``
    (the panel's figures; NaN where not measured) in ``out_dir``."""
    shown = [{k: v for k, v in t.items() if k != "arch"} for t in report.table]
    write_csv(out_dir / "summary.csv", report.table,
              list(report.table[0]) if report.table else [])
    import pandas as pd

    text = (f"# Proxy fidelity ({protocol.dataset})\n\n"
            f"Made by `{command}`.\n\n"
            f"Protocol: `{json.dumps(protocol.fingerprint(), sort_keys=True)}`\n\n"
            + (f"Reference made by `{reference_command}`.\n\n" if reference_command else "")
            + "\n".join(f"- {line}" for line in figures_lines(report.figures)) + "\n\n"
            + markdown_table(pd.DataFrame(shown)) + "\n\n"
            "val_mean / val_std / val_range: proxy validation accuracy (%) over seeds "
            f"(std: sample standard deviation; range: max - min); last{LAST_EPOCHS}_mean: "
            f"the mean of the last {LAST_EPOCHS} epochs' accuracy; reference: the "
            "reference's validation accuracy.\n")
    write_text(out_dir / "fidelity.md", text)
    figures = {k: (dataclasses.asdict(v) if isinstance(v, Spread) else v)
               for k, v in report.figures.items()}
    write_json(out_dir / "figures.json", {"command": command,
                                          "reference_command": reference_command,
                                          "protocol": protocol.fingerprint(),
                                          "figures": figures})


def completed(row: dict) -> bool:
    """Whether a row's training completed ("ok" in tables written before mbnas.outcome)."""
    return row["status"] in (Status.COMPLETE, "ok")
