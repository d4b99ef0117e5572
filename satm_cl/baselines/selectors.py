"""Real-subset selectors: which train images (per class, `ipc` of them) stand in for a condensed set.

Every selector gets the train split already in model-input space and returns indices into it, grouped in
class order (class 0's picks first). `herding` and `kcenter` work in the penultimate-layer feature space of
a ConvNet (the dataset preset's condensation architecture) trained for a few epochs on the train split.

- random:  `ipc` images per class drawn uniformly without replacement from a seeded generator.
- herding: greedy herding (Welling 2009, as used for exemplars by iCaRL, Rebuffi et al. 2017): the k-th pick
           is the image that brings the mean of the picked (L2-normalised) features closest to the class mean.
- kcenter: greedy k-center (Sener & Savarese 2018): first centre = the image nearest the class mean, then
           repeatedly the image farthest from its nearest centre.
           At IPC 1 herding and kcenter are therefore the same set (both pick the image nearest the class
           mean; records show one set fingerprint): report one of them there.
- full:    the whole train split (the upper-bound baseline); `--ipc` is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from satm_cl.config import CondenseConfig
from satm_cl.errors import SatmError
from satm_cl.experts.train import expert_train_config, stratified_subset
from satm_cl.models import create_model
from satm_cl.registry import Registry
from satm_cl.seeding import derive_seed, make_generator
from satm_cl.training import train_model

# Epochs of the feature ConvNet behind herding / k-center: enough to give class-structured features,
# few enough to keep selection to seconds on digits (the net is trained afresh each time; nothing cached).
FEATURE_EPOCHS = 5


@dataclass(frozen=True)
class SelectionContext:
    """What a selector sees: the train split in model-input space (on `device`), the preset and the seed."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    num_classes: int
    ipc: int
    cfg: CondenseConfig
    seed: int
    device: torch.device


# ctx -> (indices into the train split in class order, the selector's settings for the artifact metadata)
Selector = Callable[[SelectionContext], tuple[torch.Tensor, dict[str, Any]]]
SELECTORS: Registry[Selector] = Registry("baseline")


def class_indices(y: torch.Tensor, num_classes: int, ipc: int | None) -> list[torch.Tensor]:
    """Train indices of each class (CPU); with `ipc`, a class holding fewer images is a one-line SatmError."""
    y = y.cpu()
    groups = [(y == c).nonzero().flatten() for c in range(num_classes)]
    if ipc is not None:
        short = [(c, g.numel()) for c, g in enumerate(groups) if g.numel() < ipc]
        if short:
            c, n = short[0]
            raise SatmError(f"class {c} has only {n} train images, fewer than ipc {ipc}")
    return groups


@torch.no_grad()
def embed(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Penultimate features (input of the last Linear layer), L2-normalised, in eval mode, batched."""
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    captured: list[torch.Tensor] = []
    handle = last.register_forward_pre_hook(lambda _m, inp: captured.append(inp[0].flatten(1)))
    model.eval()
    try:
        for start in range(0, x.shape[0], batch_size):
            model(x[start : start + batch_size])
    finally:
        handle.remove()
    return nn.functional.normalize(torch.cat(captured), dim=1)


def feature_space(ctx: SelectionContext) -> tuple[torch.Tensor, dict[str, Any]]:
    """Features of every train image from a preset-architecture ConvNet trained briefly on the train split."""
    exp = ctx.cfg.expert
    _, c, h, w = ctx.train_x.shape
    model = create_model(
        exp.arch,
        c,
        ctx.num_classes,
        (h, w),
        seed=derive_seed(ctx.seed, "baseline-features"),
        **exp.arch_kwargs,
    ).to(ctx.device)
    x, y = ctx.train_x, ctx.train_y
    if exp.train_subset is not None and exp.train_subset < y.shape[0]:
        keep = stratified_subset(y.cpu(), exp.train_subset, derive_seed(ctx.seed, "baseline-subset"))
        keep = keep.to(x.device)
        x, y = x[keep], y[keep]
    tcfg = expert_train_config(exp, epochs=FEATURE_EPOCHS)
    gen = make_generator(ctx.seed, "baseline-features")
    train_model(model, x, y, tcfg, gen, progress="baseline features")  # minutes on a full split
    settings = {
        "feature_arch": exp.arch,
        "feature_arch_kwargs": dict(exp.arch_kwargs),
        "feature_epochs": FEATURE_EPOCHS,
        "feature_lr": exp.lr,
        "feature_batch_size": exp.batch_size,
        "feature_train_images": int(y.shape[0]),
        "features": "penultimate, L2-normalised",
    }
    return embed(model, ctx.train_x), settings


def herding_order(features: torch.Tensor, k: int) -> torch.Tensor:
    """Greedy herding: k distinct rows whose running mean best tracks the mean of all rows (iCaRL)."""
    n = features.shape[0]
    mu = features.mean(0)
    running = torch.zeros_like(mu)
    free = torch.ones(n, dtype=torch.bool, device=features.device)
    picks = []
    for step in range(1, k + 1):
        dist = (mu - (running + features) / step).norm(dim=1).masked_fill(~free, float("inf"))
        i = int(dist.argmin())
        picks.append(i)
        running += features[i]
        free[i] = False
    return torch.tensor(picks, dtype=torch.long)


def kcenter_order(features: torch.Tensor, k: int) -> torch.Tensor:
    """Greedy k-center: the row nearest the mean, then k-1 times the row farthest from its nearest pick."""
    first = int((features - features.mean(0)).norm(dim=1).argmin())
    nearest = (features - features[first]).norm(dim=1)
    nearest[first] = -1.0  # picked rows can never be picked again, even among duplicates
    picks = [first]
    for _ in range(k - 1):
        i = int(nearest.argmax())
        picks.append(i)
        nearest = torch.minimum(nearest, (features - features[i]).norm(dim=1))
        nearest[picks] = -1.0
    return torch.tensor(picks, dtype=torch.long)


@SELECTORS.register("random")
def select_random(ctx: SelectionContext) -> tuple[torch.Tensor, dict[str, Any]]:
    """`ipc` uniformly random train images per class (seeded)."""
    gen = make_generator(ctx.seed, "baseline-random")
    groups = class_indices(ctx.train_y, ctx.num_classes, ctx.ipc)
    picks = [g[torch.randperm(g.numel(), generator=gen)[: ctx.ipc]] for g in groups]
    return torch.cat(picks), {}


def _by_features(
    ctx: SelectionContext, order: Callable[[torch.Tensor, int], torch.Tensor]
) -> tuple[torch.Tensor, dict[str, Any]]:
    groups = class_indices(ctx.train_y, ctx.num_classes, ctx.ipc)
    features, settings = feature_space(ctx)
    features = features.cpu()
    picks = [g[order(features[g], ctx.ipc)] for g in groups]
    return torch.cat(picks), settings


@SELECTORS.register("herding")
def select_herding(ctx: SelectionContext) -> tuple[torch.Tensor, dict[str, Any]]:
    """Per class, greedy herding towards the class-mean feature (Welling 2009 / iCaRL)."""
    return _by_features(ctx, herding_order)


@SELECTORS.register("kcenter")
def select_kcenter(ctx: SelectionContext) -> tuple[torch.Tensor, dict[str, Any]]:
    """Per class, greedy k-center in feature space, starting from the image nearest the class mean."""
    return _by_features(ctx, kcenter_order)


@SELECTORS.register("full")
def select_full(ctx: SelectionContext) -> tuple[torch.Tensor, dict[str, Any]]:
    """The whole train split, grouped in class order (stable within a class); `ipc` is ignored."""
    return torch.cat(class_indices(ctx.train_y, ctx.num_classes, None)), {}
