"""The one train-a-fresh-model loop (SGD, step schedule, DSA, per-epoch callback).

Experts record their parameters with it, condensation validates with it, evaluation and the
baselines train with it: one loop, four users, so every number is produced the same way.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from satm_cl.data.dsa import DSA
from satm_cl.progress import progress_bar
from satm_cl.registry import Registry
from satm_cl.train_state import Position, TrainCheckpoint, load_state, save_state

# Arithmetic precision of forward passes (and so of their backward): `fp32` everywhere, or `bf16` under
# autocast (convolutions and linear layers in bfloat16, parameters, optimiser state and losses in fp32).
# Measured on a 2-core CPU with AVX512-BF16: the Fashion-MNIST expert step 1.7x faster, the condensation
# unroll 1.5x; on an AVX2-only CPU (bf16 emulated) 6x and 8x *slower* (docs/performance.md), which
# `satm_cl.device.precision_warning` says. Not bitwise-equal to fp32: a setting, never a silent switch.
PRECISIONS: Registry[torch.dtype | None] = Registry("precision")
PRECISIONS.register("fp32")(None)
PRECISIONS.register("bf16")(torch.bfloat16)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[object]:
    """The context that runs forward passes at `precision` on `device` (a no-op for `fp32`)."""
    dtype = PRECISIONS.get(precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


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
    precision: str = "fp32"  # forward-pass arithmetic (`PRECISIONS`); scoring always runs in fp32

    def __post_init__(self) -> None:
        PRECISIONS.get(self.precision)  # an unknown name is a one-line error listing the valid ones


EpochCallback = Callable[[int, nn.Module], None]


def train_model(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: TrainConfig,
    generator: torch.Generator | Sequence[torch.Generator],
    on_epoch: EpochCallback | None = None,
    progress: str | None = None,
    checkpoint: TrainCheckpoint | None = None,
) -> nn.Module:
    """Train `model` in place on (x, y) (already in model-input space, on the model's device).

    `generator` (CPU) drives shuffling and augmentation, so a run is a pure function of its seed.
    `on_epoch(e, model)` is called after every epoch e = 1..epochs. Given a sequence of R generators,
    `model` is a `StackedConvNet` of R runs: run r draws its own order and augmentation from generator r,
    exactly as it would alone, and the loss is the sum of the runs' own mean losses. With `checkpoint`
    (not together with `on_epoch`), the state is saved every `checkpoint.every_s` seconds and a call that
    finds it continues from it (`satm_cl.train_state`).
    """
    if checkpoint is not None and on_epoch is not None:
        raise ValueError("a checkpointed training cannot replay per-epoch callbacks")
    device = x.device
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    decay_epoch = int(cfg.epochs * cfg.decay_at) if cfg.decay_at is not None else None
    dsa = DSA(cfg.dsa)
    gens = None if isinstance(generator, torch.Generator) else list(generator)
    all_gens: list[torch.Generator] = (
        [generator] if isinstance(generator, torch.Generator) else list(generator)
    )
    n = x.shape[0]
    cast = autocast(device, cfg.precision)
    resumed = None if checkpoint is None else load_state(checkpoint, model, opt, all_gens)
    if resumed is not None and resumed.done:
        return model
    first = 1 if resumed is None else resumed.epoch
    last_save, saved = time.monotonic(), resumed is not None
    epochs = range(first, cfg.epochs + 1)
    bar = progress_bar(
        epochs, desc=progress, leave=False, disable=progress is None, total=cfg.epochs, initial=first - 1
    )
    for epoch in bar:
        if decay_epoch is not None and epoch == decay_epoch + 1:
            for group in opt.param_groups:
                group["lr"] = cfg.lr * 0.1
        model.train()
        begin = 0
        if resumed is not None and epoch == resumed.epoch:
            orders = [o.to(device) for o in resumed.orders]
            begin = resumed.start
        else:
            orders = [torch.randperm(n, generator=g).to(device) for g in all_gens]
        order = orders[0]
        for start in range(begin, n, cfg.batch_size):
            if gens is None:
                idx = order[start : start + cfg.batch_size]
                xb = dsa(x[idx], generator)  # type: ignore[arg-type]
                with cast:
                    logits = model(xb)
                loss = F.cross_entropy(logits.to(xb.dtype), y[idx])  # the loss in the input's precision
            else:
                idxs = [o[start : start + cfg.batch_size] for o in orders]
                xb = torch.stack([dsa(x[i], g) for i, g in zip(idxs, gens, strict=True)], dim=1)
                yb = torch.stack([y[i] for i in idxs], dim=1)
                with cast:
                    logits = model(xb)
                total = F.cross_entropy(logits.to(xb.dtype).flatten(0, 1), yb.flatten(), reduction="sum")
                loss = total / xb.shape[0]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if checkpoint is not None and time.monotonic() - last_save >= checkpoint.every_s:
                where = Position(epoch, start + cfg.batch_size, tuple(orders))
                save_state(checkpoint, model, opt, all_gens, where)
                last_save, saved = time.monotonic(), True
        if on_epoch is not None:
            on_epoch(epoch, model)
    if checkpoint is not None and saved:
        # a training long enough to have saved keeps its end, so scoring can be redone without it
        done = Position(cfg.epochs, n, tuple(orders), done=True)
        save_state(checkpoint, model, opt, all_gens, done)
    return model


# Scoring on a CPU in small batches keeps activations in cache and off fresh pages: with the system
# allocator (one thread, ConvNet-3 width 64) 10k Fashion-MNIST images score ~2x faster in batches of
# ~32-64 than of 1024, digits ~1.7x at 256; under the CLI's jemalloc the two take the same time. The
# logits are bitwise the same. The budget is for a 64-channel map of the input's size.
CPU_SCORE_BYTES = 6_000_000
GPU_SCORE_BATCH = 1024


def score_batch_size(x: torch.Tensor, copies: int = 1) -> int:
    """Images per scoring batch for inputs like `x` (`copies`: runs scored at once on each image)."""
    if x.device.type != "cpu":
        return max(1, GPU_SCORE_BATCH // copies)
    per_image = 64 * x[0, 0].numel() * x.element_size() * copies
    return max(1, min(GPU_SCORE_BATCH, CPU_SCORE_BYTES // per_image))


@torch.no_grad()
def count_correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int | None = None) -> int:
    """Top-1 hits of `model` on (x, y), in eval mode, batched (default: `score_batch_size`)."""
    model.eval()
    batch_size = batch_size or score_batch_size(x)
    correct = 0
    for start in range(0, x.shape[0], batch_size):
        logits = model(x[start : start + batch_size])
        correct += int((logits.argmax(1) == y[start : start + batch_size]).sum())
    return correct


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int | None = None) -> float:
    """Top-1 accuracy in percent, in eval mode, batched (default: `score_batch_size`)."""
    return percent(count_correct(model, x, y, batch_size), x.shape[0])


def percent(hits: int, total: int) -> float:
    """`hits` of `total` in percent (0 for an empty set)."""
    return 100.0 * hits / max(1, total)


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


# Stacking R runs into one computation pays when each run is too small to keep the cores busy: measured
# with `satm-cl bench --suite evaluate` (docs/performance.md). On CUDA it always pays; on a CPU only
# for sets up to this many input values (images x channels x height x width).
STACK_MAX_VALUES_CPU = 2_000


def prefer_stacked(device: torch.device, x: torch.Tensor) -> bool:
    """Whether independent runs on (x) should train stacked as one computation on `device`."""
    return device.type == "cuda" or x.numel() <= STACK_MAX_VALUES_CPU


class TrainedRuns:
    """R trained runs (a StackedConvNet, or the separately trained models), scored together."""

    def __init__(self, models: Sequence[nn.Module], stacked: nn.Module | None) -> None:
        self.models, self.stacked = list(models), stacked

    @torch.no_grad()
    def accuracy(self, x: torch.Tensor, y: torch.Tensor, batch_size: int | None = None) -> list[float]:
        """Each run's top-1 accuracy (%) on (x, y), in run order."""
        if self.stacked is None:
            return [accuracy(m, x, y, batch_size) for m in self.models]
        model = self.stacked
        model.eval()
        runs = len(self.models)
        batch_size = batch_size or score_batch_size(x, runs)
        correct = torch.zeros(runs, dtype=torch.long, device=x.device)
        for start in range(0, x.shape[0], batch_size):
            xb = x[start : start + batch_size]
            logits = model(xb.unsqueeze(1).expand(-1, runs, *xb.shape[1:]))
            correct += (logits.argmax(2) == y[start : start + batch_size, None]).sum(0)
        return [100.0 * int(c) / max(1, x.shape[0]) for c in correct]


def train_runs(
    models: Sequence[nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: TrainConfig,
    seeds: Sequence[int],
    stacked: bool | None = None,
    checkpoint: TrainCheckpoint | None = None,
) -> TrainedRuns:
    """Train fresh `models[r]` on (x, y) with the generator of `seeds[r]`, as `train_and_test` would.

    `stacked` None lets `prefer_stacked` decide; stacking applies only where the models stack exactly
    (`stack_convnets`), otherwise the runs train one after another. Either way run r sees the same
    batches and augmentations, so results agree up to float summation order. `checkpoint` (see
    `train_model`) is for one training: one run, or runs that train stacked.
    """
    from satm_cl.models.stacked import stack_convnets
    from satm_cl.seeding import make_generator

    if len(models) != len(seeds):
        raise ValueError(f"{len(models)} models but {len(seeds)} seeds")
    device = x.device
    models = [m.to(device) for m in models]
    gens = [make_generator(s, "train-and-test") for s in seeds]
    want = prefer_stacked(device, x) if stacked is None else stacked
    net = stack_convnets(models) if want and len(models) > 1 else None
    if net is None:
        if checkpoint is not None and len(models) > 1:
            raise ValueError("a checkpoint is for one training, not for runs trained one after another")
        for model, gen in zip(models, gens, strict=True):
            train_model(model, x, y, cfg, gen, checkpoint=checkpoint)
        return TrainedRuns(models, None)
    train_model(net.to(device), x, y, cfg, gens, checkpoint=checkpoint)
    return TrainedRuns(models, net)
