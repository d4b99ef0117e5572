"""Ceilings: the minimal loops every bench figure is compared with, and shared timing helpers."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from typing import Any

import psutil
import torch
import torch.nn.functional as F
from torch import nn


def plain_sgd_loop(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int,
    batch_size: int,
    lr: float,
    momentum: float,
    weight_decay: float,
    seed: int = 0,
) -> None:
    """Forward, backward, SGD step over shuffled mini-batches: no augmentation, no callbacks, no
    schedule — the fastest way to train this network on this data, the ceiling of a training loop."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    n = x.shape[0]
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen).to(x.device)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def timed(fn: Callable[[], Any], device: torch.device) -> float:
    """Wall seconds of `fn()` (CUDA: synchronised before and after)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def paired_times(
    ceiling: Callable[[], Any], ours: Callable[[], Any], device: torch.device
) -> tuple[float, float]:
    """Wall seconds of `ceiling()` and `ours()`, each the mean of two timings taken in the order ceiling,
    ours, ours, ceiling: a machine that warms up or slows down over the measurement biases neither side
    (timed once each, ceiling first, ours came out up to ~10 % ahead on this machine)."""
    c1 = timed(ceiling, device)
    o1, o2 = timed(ours, device), timed(ours, device)
    c2 = timed(ceiling, device)
    return (c1 + c2) / 2, (o1 + o2) / 2


def memory_now(device: torch.device) -> int:
    """Bytes in use now: CUDA allocated, else the process's resident set."""
    if device.type == "cuda":
        return int(torch.cuda.memory_allocated(device))
    return int(psutil.Process().memory_info().rss)


def peak_growth_mb(device: torch.device, base: int) -> float:
    """Peak memory above `base` (CUDA: max allocated; CPU: peak resident set size), in MB."""
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device)
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return round(max(peak - base, 0) / 2**20, 1)


def random_images(
    n: int, shape: tuple[int, int, int], classes: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` Gaussian images with balanced labels: timing does not depend on the values."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, *shape, generator=gen), torch.arange(n) % classes
