"""``mbnas baseline``: MobileNet V1, V2 and V3 at their published widths under the proxy
protocol, beside the papers' figures, and how faithfully the proxy ranks them.

Proxy fidelity is Kendall's tau between proxy accuracy and ImageNet top-1 over
the published models: 1 when the proxy orders them exactly as ImageNet does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mbnas.arch.cost import count
from mbnas.arch.seeds import parse_arch
from mbnas.outcome import Status
from mbnas.stats import kendall_tau
from mbnas.training.protocol import Protocol


@dataclass(frozen=True)
class Published:
    """A published ImageNet figure: top-1 (%), million mult-adds, million parameters."""

    top1: float
    mmacs: float
    mparams: float
    source: str


# Howard et al. 2017, Table 6; Sandler et al. 2018, Table 4 (1.0, 1.4) and the
# authors' tf-slim checkpoint table for the widths the paper only plots.
PUBLISHED = {
    ("mobilenet_v1", 1.0): Published(70.6, 569, 4.2, "V1 paper, Table 6"),
    ("mobilenet_v1", 0.75): Published(68.4, 325, 2.6, "V1 paper, Table 6"),
    ("mobilenet_v1", 0.5): Published(63.7, 149, 1.3, "V1 paper, Table 6"),
    ("mobilenet_v1", 0.25): Published(50.6, 41, 0.5, "V1 paper, Table 6"),
    ("mobilenet_v2", 1.4): Published(74.7, 585, 6.9, "V2 paper, Table 4"),
    ("mobilenet_v2", 1.0): Published(72.0, 300, 3.4, "V2 paper, Table 4"),
    ("mobilenet_v2", 0.75): Published(69.8, 209, 2.61, "tf-slim V2 checkpoints"),
    ("mobilenet_v2", 0.5): Published(65.4, 97, 1.95, "tf-slim V2 checkpoints"),
    ("mobilenet_v2", 0.35): Published(60.3, 59, 1.66, "tf-slim V2 checkpoints"),
    # Howard et al. 2019, Table 3 (the paper's own training; torchvision's weights, trained
    # with another recipe, reach 75.274 / 67.668).
    ("mobilenet_v3_large", 1.0): Published(75.2, 219, 5.4, "V3 paper, Table 3"),
    ("mobilenet_v3_small", 1.0): Published(67.4, 56, 2.5, "V3 paper, Table 3"),
}


def run_baseline(protocol: Protocol, *, out_dir: Path,
                 models: list[tuple[str, float]] | None = None,
                 log: Callable[[str], None] = print, progress=None):
    """Train every model, write ``baseline.csv`` / ``baseline.md``; returns (table, taus)."""
    import pandas as pd

    from mbnas.training.proxy import load_data, proxy_trainer

    models = models or list(PUBLISHED)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = load_data(protocol)
    rows = []
    for i, (name, width) in enumerate(models, start=1):
        arch = parse_arch(name, width=width)
        cost = count(arch)
        paper = PUBLISHED.get((name, width))
        log(f"[{i}/{len(models)}] {name} x{width:g}: {cost.macs / 1e6:.1f}M MACs")
        start = time.perf_counter()
        trainer = proxy_trainer(arch, protocol, progress=progress(i) if progress else None)
        result = trainer.fit()
        test_acc = trainer.evaluate(data.test) if result.status is Status.COMPLETE else float("nan")
        rows.append({
            "model": f"{name} {width:g}", "macs_M": round(cost.macs / 1e6, 1),
            "paper_macs_M": paper.mmacs if paper else None,
            "params_M": round(cost.params / 1e6, 2),
            "weights_M": round(cost.weights / 1e6, 2),
            "paper_params_M": paper.mparams if paper else None,
            "imagenet_top1": paper.top1 if paper else None,
            "proxy_val_acc": round(100 * result.val_acc, 2) if result.status is Status.COMPLETE
            else float("nan"),
            "proxy_test_acc": round(100 * test_acc, 2),
            "train_s": round(time.perf_counter() - start, 1),
            "status": result.status.value,
        })
        table = pd.DataFrame(rows)
        table.to_csv(out_dir / "baseline.csv", index=False)  # after each model: nothing lost
        log(f"    proxy val {rows[-1]['proxy_val_acc']}%, test {rows[-1]['proxy_test_acc']}% "
            f"in {rows[-1]['train_s']}s")
    table = pd.DataFrame(rows)
    known = table.dropna(subset=["imagenet_top1", "proxy_val_acc"])
    taus = {"val": kendall_tau(list(known["proxy_val_acc"]), list(known["imagenet_top1"])),
            "test": kendall_tau(list(known["proxy_test_acc"]), list(known["imagenet_top1"]))}
    table.to_csv(out_dir / "baseline.csv", index=False)
    (out_dir / "baseline.md").write_text(
        f"# Baselines under the proxy protocol ({data.name})\n\n"
        f"{_protocol_line(protocol, data)}\n\n{markdown_table(table)}\n\n"
        f"Proxy fidelity (Kendall's tau against ImageNet top-1, {len(known)} models): "
        f"{taus['val']:.3f} on validation accuracy, {taus['test']:.3f} on test accuracy.\n"
        "MACs and parameters: convolutions + classifier, one per multiply-add (the papers' "
        "convention); params are PyTorch parameters, the papers count weights.\n")
    return table, taus


def markdown_table(table) -> str:
    """A pandas table as GitHub Markdown (pandas' own needs the tabulate package)."""
    def cell(value) -> str:
        return "" if value is None or value != value else str(value)

    lines = ["| " + " | ".join(map(str, table.columns)) + " |",
             "|" + "|".join("---" for _ in table.columns) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |"
              for row in table.itertuples(index=False)]
    return "\n".join(lines)


def _protocol_line(protocol: Protocol, data) -> str:
    t = protocol.train
    return (f"Protocol: {len(data.train)} training images, {len(data.val)} validation, "
            f"{len(data.test)} test, {data.size}x{data.size}; {t.epochs} epochs, batch "
            f"{t.batch_size}, SGD lr {t.lr} (warm-up + cosine), seed {t.seed}.")
