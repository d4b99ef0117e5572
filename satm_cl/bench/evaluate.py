"""Bench suite `evaluate`: seconds per evaluation run of a 100-image Fashion-MNIST-shaped set.

Ours is `evaluate_run` (the protocol every condensed set gets: DSA, LR schedule, testing on
`test_images` images at the end); the ceiling is `plain_sgd_loop` with the same network, batch size
and epochs, no augmentation and no testing, timed in the same process.
"""

from __future__ import annotations

from typing import Any

import torch

from satm_cl.bench.ceiling import memory_now, peak_growth_mb, plain_sgd_loop, random_images, timed
from satm_cl.bench.registry import BenchOptions, Job, Row, measurement, suite
from satm_cl.config import resolve_config
from satm_cl.device import resolve_device
from satm_cl.evaluate.protocol import (
    EVAL_BATCH_SIZE,
    EVAL_MOMENTUM,
    EVAL_WEIGHT_DECAY,
    build_model,
    evaluate_run,
)
from satm_cl.synthetic import SyntheticSet, make_meta

SHAPE = (1, 28, 28)
CLASSES = 10
LR = 0.01


@suite("evaluate")
def plan_evaluate(opts: BenchOptions) -> list[Job]:
    params = {
        "images": opts.eval_images,
        "epochs": opts.eval_epochs,
        "runs": opts.eval_runs,
        "test_images": opts.test_images,
        "device": opts.device,
    }
    return [Job("evaluate", "evaluate", params, group=f"{opts.eval_images}-image set")]


def bench_set(images: int, epochs: int) -> SyntheticSet:
    """A random 1×28×28 set with the Fashion-MNIST preset's network and DSA in its metadata."""
    cfg = resolve_config("fashion-mnist", 10)
    x, y = random_images(images, SHAPE, CLASSES, 0)
    meta = make_meta(
        dataset="bench",
        class_names=[str(c) for c in range(CLASSES)],
        ipc=max(1, images // CLASSES),
        image_shape=SHAPE,
        mean=(0.5,),
        std=(0.25,),
        method="random",
        config={"dsa": cfg.dsa, "eval_epochs": epochs},
        seed=0,
        arch=cfg.expert.arch,
        arch_kwargs=cfg.expert.arch_kwargs,
    )
    return SyntheticSet(x, y, LR, meta)


@measurement("evaluate")
def measure_evaluate(p: dict[str, Any]) -> Row:
    """Seconds per run of ours vs the plain loop, `runs` runs each, in this process."""
    device = resolve_device(p.get("device", "cpu"))
    runs, epochs = int(p["runs"]), int(p["epochs"])
    syn = bench_set(int(p["images"]), epochs)
    arch = str(syn.meta["arch"])
    tests = {"test": random_images(int(p["test_images"]), SHAPE, CLASSES, 2)}
    x, y = syn.images.to(device), syn.labels.to(device)
    base = memory_now(device)
    plain_sgd_loop(build_model(syn, arch, seed=9).to(device), x, y, 2, EVAL_BATCH_SIZE, LR, 0.9, 5e-4)

    def ceiling() -> None:
        for r in range(runs):
            model = build_model(syn, arch, seed=r).to(device)
            plain_sgd_loop(model, x, y, epochs, EVAL_BATCH_SIZE, LR, EVAL_MOMENTUM, EVAL_WEIGHT_DECAY, seed=r)

    accs: list[float] = []

    def ours() -> None:
        for r in range(runs):
            accs.append(evaluate_run(syn, arch, tests, epochs, r, device)["test"])

    t_ceiling = timed(ceiling, device)
    t_ours = timed(ours, device)
    return {
        "figure": "evaluation run",
        "value": t_ours / runs,
        "unit": "s/run",
        "better": "lower",
        "ceiling": t_ceiling / runs,
        "runs": runs,
        "epochs": epochs,
        "images": int(p["images"]),
        "test_images": int(p["test_images"]),
        "threads": torch.get_num_threads(),
        "peak_mem_mb": peak_growth_mb(device, base),
    }
