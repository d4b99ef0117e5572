"""Bench suite `condense`: seconds per outer iteration and peak memory, MTT vs SATM variants vs N.

Workload (issue 10): CIFAR-shaped 3×32×32, 10 classes, IPC images per class, ConvNet-3 of the given
width, DSA off, random data and random expert segments (timing and memory do not depend on the
values). Ours runs the engine's own `Condenser.step`, so what is measured is what `condense` does;
the ceiling is a minimal MTT unroll (plain torch.func, full unroll, no engine around it) at the same
N in its own process. MTT is also measured under every allocator of `BenchOptions.allocators`.
"""

from __future__ import annotations

import resource
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from satm_cl.bench.ceiling import memory_now, peak_growth_mb, random_images, timed
from satm_cl.bench.registry import BenchOptions, Job, Row, measurement, suite
from satm_cl.device import resolve_device
from satm_cl.errors import SatmError

VARIANTS: dict[str, dict[str, Any]] = {
    "mtt": {
        "method": "mtt",
        "minimizer": "none",
        "truncate": None,
        "reuse_trajectory": False,
        "lr_grad": "autograd",
    },
    "satm": {"method": "satm", "minimizer": "sam", "truncate": None, "reuse_trajectory": False},
    "satm+tuh": {"method": "satm", "minimizer": "sam", "reuse_trajectory": False},
    "satm+tuh+tr": {"method": "satm", "minimizer": "sam", "reuse_trajectory": True},
}
# The same unrolls with bf16 forward passes (opt-in: `--variants mtt+bf16,...`; not bitwise fp32)
VARIANTS.update({f"{name}+bf16": {**v, "precision": "bf16"} for name, v in list(VARIANTS.items())})
SHAPE = (3, 32, 32)
CLASSES = 10
EXPERT_EPOCHS = 4
LR = 0.01


@suite("condense")
def plan_condense(opts: BenchOptions) -> list[Job]:
    from satm_cl.allocator import current

    unknown = [v for v in opts.variants if v not in VARIANTS]
    if unknown:
        raise SatmError(f"unknown condense variant {unknown[0]!r}; valid: {', '.join(VARIANTS)}")
    others = [a for a in opts.allocators if a != current()]  # the bench's own one is measured anyway
    jobs = []
    for n in opts.steps:
        base = {
            "syn_steps": n,
            "iterations": opts.iterations,
            "keep": min(opts.keep, n),
            "width": opts.width,
            "ipc": opts.ipc,
            "device": opts.device,
        }
        group = f"N={n}"
        if opts.condense_ceiling:
            jobs.append(Job("condense", "condense-ceiling", base, group=group, role="ceiling"))
        for variant in opts.variants:
            jobs.append(Job("condense", "condense", {**base, "variant": variant}, group=group))
        for alloc in others:
            jobs.append(Job("condense", "condense", {**base, "variant": "mtt"}, allocator=alloc, group=group))
    return jobs


class _RandomTrajectories:
    """Stands in for a TrajectoryStore: random parameter vectors, the interface the engine reads."""

    def __init__(self, numel: int, epochs: int, experts: int) -> None:
        gen = torch.Generator().manual_seed(0)
        self.rows = torch.randn(epochs + 1, numel, generator=gen) * 0.05
        self.manifest = {"numel": numel}
        self.path = Path("<random>")
        self.experts = experts

    def done(self) -> list[int]:
        return list(range(self.experts))

    def check_file(self, index: int) -> None:
        """Nothing on disk to check: the rows are made in memory."""

    def load_epochs(self, index: int, epochs: list[int]) -> torch.Tensor:
        return self.rows[epochs].clone()


def _arch_kwargs(p: dict[str, Any]) -> dict[str, Any]:
    return {"width": int(p["width"]), "depth": 3, "norm": "instance"}


@measurement("condense")
def measure_condense(p: dict[str, Any]) -> Row:
    """Median seconds of `iterations` outer steps of `variant` after one warm-up step; peak memory."""
    from satm_cl.condense.engine import Condenser
    from satm_cl.config import CondenseConfig
    from satm_cl.data.base import DatasetSplits, Split
    from satm_cl.experts.config import ExpertConfig
    from satm_cl.experts.train import prepare
    from satm_cl.models import ParamLayout, create_model

    variant, n = str(p["variant"]), int(p["syn_steps"])
    if variant not in VARIANTS:
        raise KeyError(f"unknown condense variant {variant!r}; valid: {', '.join(VARIANTS)}")
    device = resolve_device(p.get("device", "cpu"))
    torch.manual_seed(0)
    x, y = random_images(CLASSES * max(int(p["ipc"]), 10), SHAPE, CLASSES, 0)
    split = Split(x.clamp(0, 1), y.sort().values)
    names = tuple(map(str, range(CLASSES)))
    splits = DatasetSplits("bench", split, split, split, names, (0.5,) * 3, (0.25,) * 3)
    expert = ExpertConfig(dataset="bench", arch_kwargs=_arch_kwargs(p), epochs=EXPERT_EPOCHS, num_experts=1)
    cfg = CondenseConfig(
        dataset="bench",
        ipc=int(p["ipc"]),
        syn_steps=n,
        max_start_epoch=2,
        expert_epochs=2,
        truncate=int(p["keep"]),
        eval_every=0,
        dsa="none",
        expert=expert,
        iterations=int(p["iterations"]),
    )
    cfg = replace(cfg, **VARIANTS[variant])
    numel = ParamLayout.from_module(create_model("convnet", 3, CLASSES, 32, **expert.arch_kwargs)).numel
    data = prepare(splits, False, device)
    store = _RandomTrajectories(numel, EXPERT_EPOCHS, 1)
    cond = Condenser(cfg, store, data, device, Path("/nonexistent"))  # type: ignore[arg-type]
    st = cond.fresh_state()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    base = memory_now(device)
    cond.step(st)  # warm-up (allocator, dispatch caches): its memory counts, its time does not
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    times = [timed(lambda: cond.step(st), device) for _ in range(int(p["iterations"]))]
    return _row(variant, p, times, peak_growth_mb(device, base), cpu0)


@measurement("condense-ceiling")
def measure_ceiling(p: dict[str, Any]) -> Row:
    """The minimal MTT outer step: N functional SGD steps with create_graph, matching loss, backward."""
    from satm_cl.models import ParamLayout, create_model, functional_forward

    device = resolve_device(p.get("device", "cpu"))
    n, ipc = int(p["syn_steps"]), int(p["ipc"])
    model = create_model("convnet", 3, CLASSES, 32, seed=0, **_arch_kwargs(p)).to(device)
    layout = ParamLayout.from_module(model)
    gen = torch.Generator().manual_seed(0)
    theta0 = (torch.randn(layout.numel, generator=gen) * 0.05).to(device)
    target = (torch.randn(layout.numel, generator=gen) * 0.05).to(device)
    xs, ys = (t.to(device) for t in random_images(CLASSES * ipc, SHAPE, CLASSES, 0))
    xs.requires_grad_(True)
    lr = torch.tensor(LR, device=device, requires_grad=True)

    def step() -> None:
        theta = theta0.requires_grad_(True)
        for _ in range(n):
            loss = F.cross_entropy(functional_forward(model, layout, theta, xs), ys)
            (g,) = torch.autograd.grad(loss, theta, create_graph=True)
            theta = theta - lr * g
        match = (theta - target).pow(2).sum() / (theta0 - target).pow(2).sum()
        torch.autograd.grad(match, [xs, lr])

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    base = memory_now(device)
    step()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    times = [timed(step, device) for _ in range(int(p["iterations"]))]
    return _row("ceiling: minimal MTT unroll", p, times, peak_growth_mb(device, base), cpu0)


def _row(variant: str, p: dict[str, Any], times: list[float], peak_mb: float, cpu0: Any) -> Row:
    """The row of one job; CPU user/system seconds per iteration say where time went even when a
    shared machine stretches wall time (page faults show up as system time)."""
    cpu1, k = resource.getrusage(resource.RUSAGE_SELF), max(len(times), 1)
    return {
        "user_s_per_iter": (cpu1.ru_utime - cpu0.ru_utime) / k,
        "sys_s_per_iter": (cpu1.ru_stime - cpu0.ru_stime) / k,
        "figure": f"outer iteration {variant}",
        "variant": variant,
        "value": sorted(times)[len(times) // 2],
        "unit": "s/iter",
        "better": "lower",
        "seconds_per_iter": sorted(times)[len(times) // 2],
        "seconds_all": times,
        "syn_steps": int(p["syn_steps"]),
        "keep": int(p["keep"]) if "tuh" in variant else int(p["syn_steps"]),
        "width": int(p["width"]),
        "ipc": int(p["ipc"]),
        "peak_mem_mb": peak_mb,
    }
