"""Bench suite `experts`: effective images/s of expert training, per-epoch bookkeeping included.

Workload: the Fashion-MNIST preset's expert ConvNet and SGD settings on 1×28×28 random data. Ours is
`train_one_expert` in fp32 (DSA, per-epoch parameter copy and val accuracy on the fixed subset); the ceiling
is `plain_sgd_loop` on the same network, data and batch size in the same process. `legacy` times the
bookkeeping experts had before issue 10 (train + full val + test accuracy every epoch), for the record;
`bf16` is ours with `precision: bf16` (forward passes under autocast), beside the same fp32 ceiling.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from satm_cl.bench.ceiling import (
    memory_now,
    paired_times,
    peak_growth_mb,
    plain_sgd_loop,
    random_images,
    timed,
)
from satm_cl.bench.registry import BenchOptions, Job, Row, measurement, suite
from satm_cl.config import resolve_config
from satm_cl.device import resolve_device
from satm_cl.experts.train import expert_train_config, subset, train_one_expert
from satm_cl.models import ParamLayout, create_model
from satm_cl.seeding import make_generator
from satm_cl.training import accuracy, train_model

SHAPE = (1, 28, 28)
CLASSES = 10


@suite("experts")
def plan_experts(opts: BenchOptions) -> list[Job]:
    params = {
        "images": opts.expert_images,
        "epochs": opts.expert_epochs,
        "val_images": opts.expert_val_images,
        "test_images": opts.test_images,
        "device": opts.device,
    }
    return [Job("experts", "experts", params, group="fashion-mnist preset convnet")]


@measurement("experts")
def measure_experts(p: dict[str, Any]) -> Row:
    """Images/s of ours (and of the old bookkeeping) vs the plain loop, interleaved in this process
    (ceiling, ours, ours, ceiling: `paired_times`)."""
    device = resolve_device(p.get("device", "cpu"))
    # ours is timed in fp32 against the fp32 ceiling whatever the preset's precision (bf16 since candidate
    # F): bf16 is its own figure, and on CPUs without native bf16 it is the slow one
    preset = resolve_config("fashion-mnist", 10).expert
    cfg = replace(preset, epochs=int(p["epochs"]), precision="fp32")
    if "val_subset" in p:
        cfg = replace(cfg, val_subset=p["val_subset"])
    tcfg = expert_train_config(cfg)
    x, y = (t.to(device) for t in random_images(int(p["images"]), SHAPE, CLASSES, 0))
    vx, vy = (t.to(device) for t in random_images(int(p["val_images"]), SHAPE, CLASSES, 1))
    tx, ty = (t.to(device) for t in random_images(int(p["test_images"]), SHAPE, CLASSES, 2))
    sx, sy = subset(vx, vy, cfg.val_subset, 0)

    def model(seed: int) -> torch.nn.Module:
        return create_model(cfg.arch, SHAPE[0], CLASSES, SHAPE[1:], seed=seed, **cfg.arch_kwargs).to(device)

    layout = ParamLayout.from_module(model(0))
    base = memory_now(device)
    warm = model(9)
    plain_sgd_loop(
        warm, x[: 4 * cfg.batch_size], y[: 4 * cfg.batch_size], 1, cfg.batch_size, cfg.lr, 0.0, 0.0
    )
    images = int(p["images"]) * cfg.epochs

    def ceiling() -> None:
        plain_sgd_loop(model(1), x, y, cfg.epochs, cfg.batch_size, cfg.lr, cfg.momentum, cfg.weight_decay)

    trained: dict[str, torch.nn.Module] = {}

    def ours() -> None:
        trained["m"] = model(1)
        train_one_expert(trained["m"], layout, x, y, sx, sy, tcfg, seed=1)

    def ours_bf16() -> None:  # the same loop with bf16 forward passes (the `precision` setting)
        train_one_expert(model(1), layout, x, y, sx, sy, replace(tcfg, precision="bf16"), seed=1)

    def legacy() -> None:
        def record(_e: int, m: torch.nn.Module) -> None:
            layout.flatten(m).cpu()
            for ax, ay in ((x, y), (vx, vy), (tx, ty)):
                accuracy(m, ax, ay)

        train_model(model(1), x, y, tcfg, make_generator(1, "train"), on_epoch=record)

    t_ceiling, t_ours = paired_times(ceiling, ours, device)
    t_final = timed(lambda: (accuracy(trained["m"], sx, sy), accuracy(trained["m"], tx, ty)), device)
    t_legacy = timed(legacy, device) if p.get("legacy", True) else float("nan")
    t_bf16 = timed(ours_bf16, device)
    return {
        "figure": "expert training",
        "value": images / t_ours,
        "unit": "images/s",
        "better": "higher",
        "ceiling": images / t_ceiling,
        "legacy_images_per_s": images / t_legacy,
        "bf16_images_per_s": images / t_bf16,
        "final_accuracy_s": t_final,
        "images": int(p["images"]),
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "val_subset": cfg.val_subset,
        "arch_kwargs": cfg.arch_kwargs,
        "peak_mem_mb": peak_growth_mb(device, base),
    }
