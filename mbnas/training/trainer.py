"""Proxy training: a short, seeded, CPU-friendly training of one network.

Torch only (no Ray, no Optuna): the search wraps :class:`Trainer` epoch by
epoch, and ``mbnas train`` drives it directly.  The recipe follows the MobileNet
papers, shortened: SGD with Nesterov momentum, linear warm-up then cosine decay,
label smoothing 0.1, weight decay 4e-5 on conv and linear weights only
(Howard et al. 2017 put little or none on depthwise filters and batch norm).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from mbnas.data import Batches, Dataset, ImageSet
from mbnas.errors import MbnasError
from mbnas.outcome import Status
from mbnas.training.protocol import TrainConfig


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise MbnasError("device: 'cuda' was asked for but no CUDA GPU is visible; "
                         "use --device cpu or auto")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


@dataclass(frozen=True)
class EpochResult:
    epoch: int  # 1-based
    loss: float
    val_acc: float  # NaN where the epoch was not validated
    images_per_s: float
    seconds: float  # training and validation of this epoch


@dataclass
class TrainResult:
    status: Status  # COMPLETE or DIVERGED
    epochs: list[EpochResult] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""

    @property
    def val_acc(self) -> float:
        """Validation accuracy after the last epoch (0 when diverged)."""
        return self.epochs[-1].val_acc if self.status is Status.COMPLETE and self.epochs else 0.0

    def to_dict(self) -> dict:
        return {"status": self.status.value, "val_acc": self.val_acc, "seconds": self.seconds,
                "error": self.error, "epochs": [dataclasses.asdict(e) for e in self.epochs]}


class Diverged(Exception):
    """The training loss became NaN or infinite."""


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            is_weight = name == "weight" and isinstance(module, (nn.Conv2d, nn.Linear))
            depthwise = isinstance(module, nn.Conv2d) and module.groups > 1
            (decay if is_weight and not depthwise else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def _warmup_cosine(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


class Trainer:
    """Trains ``model`` on ``data`` for ``config.epochs``; resumable between epochs.

    The caller seeds torch (:func:`seed_everything`) before building the model,
    so that initialisation, shuffling and augmentation all follow ``config.seed``.
    """

    def __init__(self, model: nn.Module, data: Dataset, config: TrainConfig,
                 *, progress: Callable[[int, int, float], None] | None = None) -> None:
        if config.threads:
            torch.set_num_threads(config.threads)
        self.config = config
        self.data = data
        self.device = pick_device(config.device)
        self.memory_format = (torch.channels_last if config.channels_last
                              else torch.contiguous_format)
        self.model = model.to(self.device, memory_format=self.memory_format)
        self.batches = Batches(data.train, config.batch_size, mean=data.mean, std=data.std,
                               train=True, flip=data.flip, seed=config.seed, device=self.device,
                               channels_last=config.channels_last)
        if len(self.batches) == 0:
            raise MbnasError(f"the training split has {len(data.train)} images, fewer than one "
                             f"batch of {config.batch_size}; use a smaller --batch-size")
        steps = config.epochs * len(self.batches)
        warmup = max(1, round(config.warmup_epochs * len(self.batches)))
        self.optimizer = torch.optim.SGD(_param_groups(self.model, config.weight_decay),
                                         lr=config.lr, momentum=config.momentum, nesterov=True)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer,
                                                           _warmup_cosine(warmup, steps))
        self.criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        self.use_amp = config.amp and self.device.type == "cuda"
        self.amp_dtype = (torch.bfloat16 if self.use_amp and torch.cuda.is_bf16_supported()
                          else torch.float16)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp
                                           and self.amp_dtype == torch.float16)
        self.progress = progress
        self.epoch = 0  # epochs completed

    # --- checkpointing -----------------------------------------------------

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch = state["epoch"]

    # --- training ----------------------------------------------------------

    def train_epoch(self, validate_every_epoch: bool = True) -> EpochResult:
        """One epoch of training, then validation: after every epoch, or only after the
        last if ``validate_every_epoch`` is false (``val_acc`` is NaN before it; skipping
        changes nothing in the training, and saves ~13% of a default proxy epoch); raises
        :class:`Diverged` on NaN loss."""
        self.model.train()
        self.batches.set_epoch(self.epoch)
        start = time.perf_counter()
        loss_sum = torch.zeros((), device=self.device)
        seen = 0
        n = len(self.batches)
        for step, (x, y) in enumerate(self.batches, start=1):
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
                loss = self.criterion(self.model(x), y)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            loss_sum += loss.detach() * len(y)
            seen += len(y)
            if step % 25 == 0 or step == n:  # a host sync: not every step on CUDA
                if not torch.isfinite(loss_sum):
                    raise Diverged(f"loss became {loss_sum.item()} in epoch {self.epoch + 1}, "
                                   f"step {step}")
                if self.progress:
                    self.progress(step, n, loss_sum.item() / seen)
        train_seconds = time.perf_counter() - start
        last = self.epoch + 1 == self.config.epochs
        val_acc = self.evaluate(self.data.val) if validate_every_epoch or last else math.nan
        self.epoch += 1
        return EpochResult(self.epoch, loss_sum.item() / seen, val_acc, seen / train_seconds,
                           time.perf_counter() - start)

    @torch.no_grad()
    def evaluate(self, images: ImageSet, batch_size: int = 500) -> float:
        """Top-1 accuracy on ``images`` (no augmentation)."""
        self.model.eval()
        batches = Batches(images, batch_size, mean=self.data.mean, std=self.data.std,
                          train=False, device=self.device,
                          channels_last=self.config.channels_last)
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        for x, y in batches:
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
                correct += (self.model(x).argmax(1) == y).sum()
        return correct.item() / len(images)

    def fit(self, on_epoch: Callable[[EpochResult], None] | None = None, *,
            before_epoch: Callable[[int], None] | None = None,
            validate_every_epoch: bool = True) -> TrainResult:
        """Train the remaining epochs; a diverging run ends as status ``diverged``.

        The one training loop: ``before_epoch(n)`` runs before epoch ``n`` (1-based) and
        ``on_epoch(result)`` after it (a search trial reports and checkpoints there)."""
        result = TrainResult(Status.COMPLETE)
        start = time.perf_counter()
        try:
            while self.epoch < self.config.epochs:
                if before_epoch:
                    before_epoch(self.epoch + 1)
                epoch = self.train_epoch(validate_every_epoch=validate_every_epoch)
                result.epochs.append(epoch)
                if on_epoch:
                    on_epoch(epoch)
        except Diverged as err:
            result.status, result.error = Status.DIVERGED, str(err)
        result.seconds = time.perf_counter() - start
        return result


def seed_everything(seed: int) -> None:
    """Seed torch's generators; with a fixed thread count CPU training is repeatable."""
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
