"""The one train-a-fresh-model loop (SGD, step schedule, DSA, per-epoch callback).

Experts record their parameters with it, condensation validates with it, evaluation and the
baselines train with it: one loop, four users, so every number is produced the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from satm_cl.data.dsa import DSA


@dataclass(frozen=True)
class TrainConfig:
    """SGD settings; `decay_at` is a fraction of epochs where the LR is multiplied by 0.1 (None: never)."""

    epochs: int
    lr: float
    batch_size: int = 256
    momentum: float = 0.9
    weight_decay: float = 5e-4
    decay_at: float | None = 0.5
    dsa: str = "color_crop_cutout_flip_scale_rotate"


EpochCallback = Callable[[int, nn.Module], None]


def train_model(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: TrainConfig,
    generator: torch.Generator,
    on_epoch: EpochCallback | None = None,
    progress: str | None = None,
) -> nn.Module:
    """Train `model` in place on (x, y) (already in model-input space, on the model's device).

    `generator` (CPU) drives shuffling and augmentation, so a run is a pure function of its seed.
    `on_epoch(e, model)` is called after every epoch e = 1..epochs.
    """
    device = x.device
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    decay_epoch = int(cfg.epochs * cfg.decay_at) if cfg.decay_at is not None else None
    dsa = DSA(cfg.dsa)
    n = x.shape[0]
    epochs = range(1, cfg.epochs + 1)
    bar = tqdm(epochs, desc=progress, leave=False, disable=progress is None)
    for epoch in bar:
        if decay_epoch is not None and epoch == decay_epoch + 1:
            for group in opt.param_groups:
                group["lr"] = cfg.lr * 0.1
        model.train()
        order = torch.randperm(n, generator=generator).to(device)
        for start in range(0, n, cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            xb = dsa(x[idx], generator)
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if on_epoch is not None:
            on_epoch(epoch, model)
    return model


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """Top-1 accuracy in percent, in eval mode, batched."""
    model.eval()
    correct = 0
    for start in range(0, x.shape[0], batch_size):
        logits = model(x[start : start + batch_size])
        correct += int((logits.argmax(1) == y[start : start + batch_size]).sum())
    return 100.0 * correct / max(1, x.shape[0])


def train_and_test(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    cfg: TrainConfig,
    seed: int,
) -> float:
    """Train-from-scratch protocol: train `model` on (x, y) with `cfg`, return its test accuracy (%).

    This is the evaluation every condensed or real subset gets (MTT's protocol: SGD momentum 0.9,
    weight decay 5e-4, LR x0.1 at half the epochs, DSA), and condensation's validation step.
    """
    from satm_cl.seeding import make_generator

    device = test_x.device
    model = model.to(device)
    train_model(model, x.to(device), y.to(device), cfg, make_generator(seed, "train-and-test"))
    return accuracy(model, test_x, test_y)
