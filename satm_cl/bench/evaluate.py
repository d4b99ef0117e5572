"""Bench suite `evaluate`: seconds per evaluation run of a Fashion-MNIST-shaped and a digits-shaped set.

Ours is `evaluate_runs` (the protocol every condensed set gets: DSA, LR schedule, testing on
`test_images` images at the end; the runs train stacked as one computation where `run_groups` says
that pays, e.g. the digits-shaped set on a CPU, and then the same runs one by one are timed too); the
ceiling is `plain_sgd_loop` with the same network, batch size and epochs, runs one by one, no
augmentation and no testing, timed in the same process (ceiling, ours, ours, ceiling: `paired_times`).
"""

from __future__ import annotations

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
from satm_cl.evaluate.protocol import (
    EVAL_BATCH_SIZE,
    EVAL_MOMENTUM,
    EVAL_WEIGHT_DECAY,
    build_model,
    evaluate_runs,
    run_groups,
)
from satm_cl.synthetic import SyntheticSet, make_meta

CLASSES = 10
LR = 0.01
# workload -> (image shape, the preset whose evaluation network and DSA it uses, images in the set)
WORKLOADS: dict[str, tuple[tuple[int, int, int], tuple[str, int], int | None]] = {
    "fashion-mnist": ((1, 28, 28), ("fashion-mnist", 10), None),  # --eval-images (100: IPC 10)
    "digits": ((1, 8, 8), ("digits", 1), 10),  # IPC 1: where stacking the runs pays on a CPU
}


@suite("evaluate")
def plan_evaluate(opts: BenchOptions) -> list[Job]:
    jobs = []
    for name, (_, _, fixed) in WORKLOADS.items():
        images = opts.eval_images if fixed is None else fixed
        params = {
            "workload": name,
            "images": images,
            "epochs": opts.eval_epochs,
            "runs": opts.eval_runs,
            "test_images": opts.test_images,
            "device": opts.device,
        }
        jobs.append(Job("evaluate", "evaluate", params, group=f"{name}-shaped {images}-image set"))
    return jobs


def bench_set(images: int, epochs: int, workload: str = "fashion-mnist") -> SyntheticSet:
    """A random set of `workload`'s image shape with its preset's network and DSA in its metadata."""
    shape, (dataset, ipc), _ = WORKLOADS[workload]
    cfg = resolve_config(dataset, ipc)
    x, y = random_images(images, shape, CLASSES, 0)
    meta = make_meta(
        dataset="bench",
        class_names=[str(c) for c in range(CLASSES)],
        ipc=max(1, images // CLASSES),
        image_shape=shape,
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
    """Seconds per run of ours (the user's path: runs stacked where `run_groups` says it pays) vs the
    plain loop, `runs` runs each, in this process; where ours stacks, also the runs one by one."""
    device = resolve_device(p.get("device", "cpu"))
    runs, epochs = int(p["runs"]), int(p["epochs"])
    workload = str(p.get("workload", "fashion-mnist"))
    syn = bench_set(int(p["images"]), epochs, workload)
    shape = WORKLOADS[workload][0]
    arch = str(syn.meta["arch"])
    tests = {"test": random_images(int(p["test_images"]), shape, CLASSES, 2)}
    x, y = syn.images.to(device), syn.labels.to(device)
    seeds = list(range(runs))
    stacked = len(run_groups(syn, arch, seeds, device)) == 1 and runs > 1
    base = memory_now(device)
    plain_sgd_loop(build_model(syn, arch, seed=9).to(device), x, y, 2, EVAL_BATCH_SIZE, LR, 0.9, 5e-4)

    def ceiling() -> None:
        for r in range(runs):
            model = build_model(syn, arch, seed=r).to(device)
            plain_sgd_loop(model, x, y, epochs, EVAL_BATCH_SIZE, LR, EVAL_MOMENTUM, EVAL_WEIGHT_DECAY, seed=r)

    accs: list[float] = []

    def ours() -> None:
        accs.extend(a["test"] for a in evaluate_runs(syn, arch, tests, epochs, seeds, device))

    def one_by_one() -> None:
        evaluate_runs(syn, arch, tests, epochs, seeds, device, stacked=False)

    t_ceiling, t_ours = paired_times(ceiling, ours, device)
    t_seq = timed(one_by_one, device) if stacked else t_ours
    return {
        "figure": f"evaluation run ({workload}-shaped)",
        "value": t_ours / runs,
        "unit": "s/run",
        "better": "lower",
        "ceiling": t_ceiling / runs,
        "stacked": stacked,
        "one_by_one": t_seq / runs,
        "runs": runs,
        "epochs": epochs,
        "images": int(p["images"]),
        "test_images": int(p["test_images"]),
        "threads": torch.get_num_threads(),
        "peak_mem_mb": peak_growth_mb(device, base),
    }
