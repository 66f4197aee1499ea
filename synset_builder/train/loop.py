"""The training loop: SGD, warm-up + cosine, label smoothing, checkpoints, resume.

One function, :func:`train`, runs a whole baseline: cache the export, build the
network, train for ``epochs`` with a checkpoint after each (written atomically),
then score every split and hand the predictions to :mod:`.report`. A run that was
stopped resumes from its checkpoint and, on the CPU, ends with the same weights as
an uninterrupted one: the schedule is a function of the step, and each epoch's
shuffle and crops come from a generator seeded by (seed, epoch).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from synset_builder.errors import InvalidInput
from synset_builder.progress import phase
from synset_builder.train import augment, checkpoint
from synset_builder.train.cache import SplitCache, load_split
from synset_builder.train.config import TrainConfig
from synset_builder.train.export_reader import SPLITS, Export, open_export
from synset_builder.train.resnet import build_model

EpochHook = Callable[[dict[str, Any]], None]


class DeviceUnavailable(InvalidInput):
    """CUDA was asked for on a machine without it."""


@dataclass
class Predictions:
    """Softmax outputs of the final model on one split, in cache order."""

    cache: SplitCache
    probs: np.ndarray  # (N, C) float32
    loss: float


@dataclass
class TrainResult:
    config: TrainConfig
    export: Export
    device: str
    device_name: str
    history: list[dict[str, Any]]
    predictions: dict[str, Predictions]
    images_per_second: float
    resumed_from: int = 0
    init_skipped: list[str] = field(default_factory=list)
    model: nn.Module | None = field(default=None, repr=False)
    # Out-of-fold predictions on the train split (``--folds``), for suspects.
    held_out: Predictions | None = None


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailable("--device cuda was asked for but this machine has no CUDA GPU.")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({torch.get_num_threads()} threads)"


def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    """Linear warm-up to ``base``, then cosine decay to zero at ``total``."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1 + math.cos(math.pi * progress))


def _autocast(device: torch.device) -> torch.autocast:
    # bf16 keeps fp32's range, so no loss scaling is needed; CPUs stay in fp32.
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.SGD:
    """Nesterov SGD; no weight decay on BatchNorm and biases (they only rescale)."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    return torch.optim.SGD(
        [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg.base_lr,
        momentum=cfg.momentum,
        nesterov=True,
    )


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    criterion: nn.Module,
    x: Tensor,
    y: Tensor,
    device: torch.device,
) -> tuple[Tensor, Tensor]:
    """One optimisation step (shared with bench/train.py, so both time the same work)."""
    with _autocast(device):
        logits = model(x)
        loss = criterion(logits.float(), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return logits, loss


@torch.inference_mode()
def predict(
    model: nn.Module, cache: SplitCache, cfg: TrainConfig, device: torch.device
) -> Predictions:
    model.eval()
    feeder = augment.Feeder(cache.images, cache.labels, device)
    probs: list[Tensor] = []
    loss_sum = 0.0
    for x, y in feeder.batches(augment.eval_batches(len(cache), cfg.batch_size)):
        with _autocast(device):
            logits = model(augment.eval_view(augment.normalize(x), cfg.image_size)).float()
        loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum").item()
        probs.append(logits.softmax(1).cpu())
    n_classes = model.fc.out_features  # type: ignore[union-attr]
    out = torch.cat(probs).numpy() if probs else np.zeros((0, n_classes), np.float32)
    return Predictions(cache, out, loss_sum / max(1, len(cache)))


def _caches(
    export: Export, export_dir: Path, out: Path, cfg: TrainConfig, exclude: frozenset[str]
) -> tuple[dict[str, SplitCache], SplitCache]:
    """Every split's cache, and the training images (less ``exclude``)."""
    cache_dir = cfg.cache_dir or out / "cache"
    caches = {
        s: load_split(
            export, s, cfg.image_size, cache_dir, workers=cfg.workers, progress=cfg.progress
        )
        for s in SPLITS
    }
    train_cache = caches["train"]
    if exclude:
        keep = [i for i, sha in enumerate(train_cache.sha256) if sha not in exclude]
        train_cache = train_cache.subset(np.asarray(keep, dtype=np.int64))
    if len(train_cache) < 2:
        raise InvalidInput(
            f"The export {export_dir} has {len(train_cache)} training images; "
            "training needs at least two."
        )
    return caches, train_cache


@dataclass
class _Run:
    """What one training run carries from epoch to epoch."""

    model: nn.Module
    step_model: nn.Module
    optimizer: torch.optim.Optimizer
    criterion: nn.Module
    feeder: augment.Feeder
    size: int  # training images
    steps_per_epoch: int
    total: int
    warmup: int


def _epoch(run: _Run, epoch: int, cfg: TrainConfig, device: torch.device) -> dict[str, Any]:
    """Train one epoch; its record (loss, top-1, learning rate, speed)."""
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
    batches = augment.epoch_batches(run.size, cfg.batch_size, gen)
    run.model.train()
    # One line per epoch stays (100%, the epoch's mean loss and speed), on a terminal
    # and in a log (synset_builder/progress.py).
    loss_sum, correct, count = 0.0, 0, 0
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    desc = f"epoch {epoch + 1}/{cfg.epochs}"
    with phase(len(batches), desc, "batch", enabled=cfg.progress) as bar:
        for i, (x, y) in enumerate(run.feeder.batches(batches)):
            step = epoch * run.steps_per_epoch + i
            for group in run.optimizer.param_groups:
                group["lr"] = lr_at(step, run.total, run.warmup, cfg.base_lr)
            xb = augment.train_view(
                augment.normalize(x), augment.crop_params(len(y), gen), cfg.image_size
            )
            logits, loss = train_step(run.step_model, run.optimizer, run.criterion, xb, y, device)
            loss_sum += loss.detach() * len(y)
            correct += (logits.argmax(1) == y).sum()
            count += len(y)
            bar.update(1)
            if cfg.progress and i % 10 == 0:
                rate = count / max(1e-9, time.perf_counter() - t0)
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}", img_s=f"{rate:.0f}")
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - t0
        bar.set_postfix(
            loss=f"{float(loss_sum) / max(1, count):.3f}",
            img_s=f"{count / max(1e-9, seconds):.0f}",
            refresh=False,
        )
    return {
        "epoch": epoch + 1,
        "lr": run.optimizer.param_groups[0]["lr"],
        "train_loss": float(loss_sum) / max(1, count),
        "train_top1": float(correct) / max(1, count),
        "images_per_second": count / max(1e-9, seconds),
        "seconds": seconds,
        "images": count,
    }


def _build(
    cfg: TrainConfig, export: Export, train_cache: SplitCache, device: torch.device
) -> tuple[_Run, list[str]]:
    """The network, its optimizer and schedule, on ``device``; and init layers skipped."""
    if device.type == "cuda":
        # Fastest kernels over bit-exact repeats: only CPU runs promise identical weights.
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.arch, len(export.classes), cfg.width)
    skipped = checkpoint.load_init(model, cfg.init) if cfg.init else []
    model = model.to(device, memory_format=torch.channels_last)
    steps_per_epoch = len(
        augment.epoch_batches(len(train_cache), cfg.batch_size, torch.Generator().manual_seed(0))
    )
    total = steps_per_epoch * cfg.epochs
    run = _Run(
        model=model,
        step_model=torch.compile(model) if cfg.compile else model,  # type: ignore[arg-type]
        optimizer=make_optimizer(model, cfg),
        criterion=nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing),
        feeder=augment.Feeder(train_cache.images, train_cache.labels, device),
        size=len(train_cache),
        steps_per_epoch=steps_per_epoch,
        total=total,
        warmup=min(round(cfg.warmup_epochs * steps_per_epoch), total // 2),
    )
    return run, skipped


def _announce(cfg: TrainConfig, device: torch.device, start: int, out: Path) -> None:
    """One line on stderr before the first epoch: what runs where, and whether a
    resumed run has anything left to train."""
    todo = (
        f"epochs {start + 1}-{cfg.epochs}"
        if start < cfg.epochs
        else f"already trained for {start} epochs, scoring only"
    )
    print(
        f"Training {cfg.arch} on {device_name(device)}, {todo}; writing to {out}.",
        file=sys.stderr,
    )


def train(
    export_dir: Path,
    out: Path,
    cfg: TrainConfig,
    *,
    resume: bool = False,
    on_epoch_end: EpochHook | None = None,
    exclude: frozenset[str] = frozenset(),
    evaluate: bool = True,
) -> TrainResult:
    """Train the baseline on an export; ``on_epoch_end`` sees each epoch's record.

    ``exclude`` leaves those training images (by sha256) out, for held-out folds;
    ``evaluate=False`` skips scoring, when the caller predicts only what it needs.
    """
    export = open_export(export_dir, cfg.export_format)
    device = pick_device(cfg.device)
    ckpt_path = checkpoint.out_folder(out, resume)
    caches, train_cache = _caches(export, export_dir, out, cfg, exclude)
    run, skipped = _build(cfg, export, train_cache, device)
    history: list[dict[str, Any]] = []
    start = 0
    if resume and ckpt_path.exists():
        history, start = checkpoint.restore(run.model, run.optimizer, ckpt_path, cfg, export)
    if cfg.progress:
        _announce(cfg, device, start, out)
    seen, busy = 0, 0.0
    for epoch in range(start, cfg.epochs):
        record = _epoch(run, epoch, cfg, device)
        seen, busy = seen + record.pop("images"), busy + record["seconds"]
        for split in ("val", "test"):
            if evaluate and len(caches[split]):
                pred = predict(run.model, caches[split], cfg, device)
                record[f"{split}_loss"] = pred.loss
                record[f"{split}_top1"] = float((pred.probs.argmax(1) == pred.cache.labels).mean())
                break
        history.append(record)
        checkpoint.save(run.model, run.optimizer, epoch + 1, history, cfg, export, ckpt_path)
        if on_epoch_end is not None:
            on_epoch_end(record)
    predictions = {
        s: predict(run.model, c, cfg, device) for s, c in caches.items() if evaluate and len(c)
    }
    rate = seen / busy if busy else (history[-1]["images_per_second"] if history else 0.0)
    return TrainResult(
        cfg,
        export,
        device.type,
        device_name(device),
        history,
        predictions,
        rate,
        resumed_from=start,
        init_skipped=skipped,
        model=run.model,
    )
