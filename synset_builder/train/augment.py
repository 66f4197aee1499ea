"""Batches from the uint8 cache, augmented on the device.

Random resized crop and horizontal flip are one affine warp per image, so a whole
batch is augmented by a single ``affine_grid`` + ``grid_sample`` on the GPU instead
of per-image PIL work in worker processes. The crop parameters come from a CPU
``torch.Generator`` seeded per epoch: the same seed gives the same crops on any
device, and a resumed run sees exactly the batches an uninterrupted one would.

Feeding: a cache small enough is copied to the device once and batches are
gathered there; otherwise a background thread gathers batches from the
memory-mapped array into pinned memory and copies them asynchronously, one batch
ahead of the model.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
# Copy the whole cache to the GPU when it takes under this share of free memory.
DEVICE_CACHE_SHARE = 0.25


def normalize(x: Tensor) -> Tensor:
    """uint8 NHWC -> float NCHW (channels_last memory), ImageNet mean/std."""
    x = x.permute(0, 3, 1, 2).float().div_(255)
    mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous(memory_format=torch.channels_last)


def crop_params(
    n: int,
    gen: torch.Generator,
    scale: tuple[float, float] = (0.25, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> Tensor:
    """(n, 2, 3) affine matrices: a random area/aspect crop, flipped half the time.

    The area floor is 0.25 rather than ImageNet's 0.08: built sets are small and
    their baseline runs short, where gentler crops learn faster.
    """
    area = torch.empty(n).uniform_(scale[0], scale[1], generator=gen)
    log_r = torch.empty(n).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=gen)
    r = torch.exp(log_r)
    w = torch.sqrt(area * r).clamp(max=1.0)
    h = torch.sqrt(area / r).clamp(max=1.0)
    cx = (torch.rand(n, generator=gen) * 2 - 1) * (1 - w)
    cy = (torch.rand(n, generator=gen) * 2 - 1) * (1 - h)
    flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = w * flip
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = h
    theta[:, 1, 2] = cy
    return theta


def train_view(x: Tensor, theta: Tensor, size: int) -> Tensor:
    """Apply the crops of :func:`crop_params` to a normalised batch, on its device."""
    grid = F.affine_grid(theta.to(x.device), [x.shape[0], 3, size, size], align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return out.contiguous(memory_format=torch.channels_last)


def eval_view(x: Tensor, size: int) -> Tensor:
    """The centre crop (the 0.875 rule: a 224 crop of a 256 image)."""
    off = (x.shape[-1] - size) // 2
    return x[..., off : off + size, off : off + size].contiguous(memory_format=torch.channels_last)


class Feeder:
    """Hands out (uint8 images, labels) batches on the device for given index lists."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, device: torch.device) -> None:
        self.device = device
        self.labels = torch.from_numpy(np.asarray(labels, dtype=np.int64))
        self.on_device: Tensor | None = None
        self.host = images
        nbytes = images.size * images.itemsize
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            if nbytes < DEVICE_CACHE_SHARE * free:
                self.on_device = torch.from_numpy(np.ascontiguousarray(images)).to(device)
                self.labels = self.labels.to(device)
        elif nbytes < 2**30:
            # On the CPU a 1 GiB-or-less cache is simply read into memory once.
            self.host = np.ascontiguousarray(images)

    def _host_batch(self, idx: np.ndarray) -> tuple[Tensor, Tensor]:
        idx = np.sort(idx)  # sequential reads from the memory map
        x = torch.from_numpy(np.ascontiguousarray(self.host[idx]))
        y = self.labels[torch.from_numpy(idx)]
        if self.device.type == "cuda":
            x = x.pin_memory().to(self.device, non_blocking=True)
            y = y.pin_memory().to(self.device, non_blocking=True)
        return x, y

    def batches(self, batches: list[np.ndarray]) -> Iterator[tuple[Tensor, Tensor]]:
        if self.on_device is not None:
            for idx in batches:
                i = torch.from_numpy(np.sort(idx)).to(self.device)
                yield self.on_device[i], self.labels[i]
            return
        if self.device.type != "cuda":
            for idx in batches:
                yield self._host_batch(idx)
            return
        yield from self._prefetched(batches)

    def _prefetched(self, batches: list[np.ndarray]) -> Iterator[tuple[Tensor, Tensor]]:
        q: queue.Queue = queue.Queue(maxsize=3)
        stop = threading.Event()

        def work() -> None:
            try:
                for idx in batches:
                    if stop.is_set():
                        return
                    q.put(self._host_batch(idx))
            except BaseException as exc:  # handed to the consumer, which re-raises it
                q.put(exc)
                return
            q.put(None)

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        try:
            while (item := q.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while thread.is_alive():
                try:
                    q.get_nowait()
                except queue.Empty:
                    thread.join(0.01)


def epoch_batches(n: int, batch_size: int, gen: torch.Generator) -> list[np.ndarray]:
    """A shuffled epoch; the last short batch is dropped (BatchNorm needs > 1 sample)."""
    order = torch.randperm(n, generator=gen).numpy()
    size = min(batch_size, n)
    full = n // size
    return [order[i * size : (i + 1) * size] for i in range(full)]


def eval_batches(n: int, batch_size: int) -> list[np.ndarray]:
    return [np.arange(i, min(n, i + batch_size)) for i in range(0, n, batch_size)]
