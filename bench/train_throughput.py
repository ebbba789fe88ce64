"""Images/s of mbnas's training loop against a bare PyTorch loop, same model, data, threads.

    .venv/bin/python bench/train_throughput.py [--arch mobilenet_v2] [--images 3000]

The bare loop is the minimum a training step needs (forward, cross-entropy, backward,
SGD step) over batches prepared in advance; mbnas's loop adds augmentation, the LR
schedule, label smoothing, loss tracking and divergence checks.  The two alternate
epoch by epoch so that machine noise hits both alike; medians are compared.  Prints the
ratio (target >= 0.95) with 1 and with 2 threads.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mbnas.arch.seeds import parse_arch
from mbnas.data import Batches
from mbnas.nn.network import build
from mbnas.training.protocol import Protocol, TrainConfig
from mbnas.training.proxy import load_data, proxy_arch
from mbnas.training.trainer import Trainer


def bare_epoch(model, batches, optimizer) -> float:
    model.train()
    start = time.perf_counter()
    seen = 0
    for x, y in batches:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seen += len(y)
    return seen / (time.perf_counter() - start)


def measure(arch_name: str, images: int, threads: int, rounds: int) -> tuple[float, float]:
    torch.set_num_threads(threads)
    protocol = Protocol(subset=images, val_size=500,
                        train=TrainConfig(epochs=rounds + 1, threads=threads))
    data = load_data(protocol)
    arch = proxy_arch(parse_arch(arch_name), resolution=data.size, num_classes=data.num_classes)
    trainer = Trainer(build(arch), data, protocol.train)
    bare_model = build(arch).to(memory_format=torch.channels_last)
    bare_opt = torch.optim.SGD(bare_model.parameters(), lr=0.01, momentum=0.9)
    prepared = list(Batches(data.train, protocol.train.batch_size, mean=data.mean,
                            std=data.std, train=True, flip=data.flip))
    bare_epoch(bare_model, prepared[:3], bare_opt)  # warm-up both
    trainer.train_epoch()
    ours, bare = [], []
    for _ in range(rounds):
        ours.append(trainer.train_epoch().images_per_s)
        bare.append(bare_epoch(bare_model, prepared, bare_opt))
    return statistics.median(ours), statistics.median(bare)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="mobilenet_v2")
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"{args.arch} proxy on Fashion-MNIST, {args.images} images per epoch")
    for threads in (1, 2):
        ours, bare = measure(args.arch, args.images, threads, args.rounds)
        print(f"threads={threads}: mbnas {ours:7.1f} img/s, bare loop {bare:7.1f} img/s, "
              f"ratio {ours / bare:.3f}")


if __name__ == "__main__":
    main()
