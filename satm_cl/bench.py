"""`satm-cl bench`: time per outer iteration and peak memory of MTT vs SATM variants vs syn_steps.

Each (variant, syn_steps) runs in a fresh process so peak memory is its own; the workload is a
CIFAR-shaped problem (3×32×32, 10 classes, IPC 1, ConvNet-3 width 64) on random data and random
expert segments — timing and memory do not depend on the values. It runs the engine's own
`Condenser.step`, so what is measured is what `condense` does.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import platform
import resource
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil
import torch

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


class _RandomTrajectories:
    """Stands in for a TrajectoryStore: random parameter vectors, same interface the engine reads."""

    def __init__(self, numel: int, epochs: int) -> None:
        gen = torch.Generator().manual_seed(0)
        self.rows = torch.randn(epochs + 1, numel, generator=gen) * 0.05
        self.manifest = {"numel": numel}
        self.path = Path("<random>")

    def done(self) -> list[int]:
        return [0]

    def load_epochs(self, index: int, epochs: list[int]) -> torch.Tensor:
        return self.rows[epochs].clone()


def _measure(variant: str, syn_steps: int, iterations: int, keep: int, device_name: str) -> dict[str, Any]:
    """Runs in a child process: build the workload, time `iterations` outer steps, report peaks."""
    from satm_cl.condense.engine import Condenser
    from satm_cl.config import CondenseConfig
    from satm_cl.data.base import DatasetSplits, Split
    from satm_cl.device import resolve_device
    from satm_cl.experts.config import ExpertConfig
    from satm_cl.experts.train import prepare
    from satm_cl.models import ParamLayout, create_model

    device = resolve_device(device_name)
    torch.manual_seed(0)
    n = 100
    split = Split(torch.rand(n, 3, 32, 32), torch.arange(10).repeat_interleave(n // 10))
    splits = DatasetSplits("bench", split, split, split, tuple(map(str, range(10))), (0.5,) * 3, (0.25,) * 3)
    expert = ExpertConfig(
        dataset="bench", arch_kwargs={"width": 64, "depth": 3, "norm": "instance"}, epochs=4
    )
    cfg = CondenseConfig(
        dataset="bench",
        syn_steps=syn_steps,
        max_start_epoch=2,
        expert_epochs=2,
        truncate=keep,
        eval_every=0,
        expert=expert,
        iterations=iterations,
    )
    cfg = replace(cfg, **VARIANTS[variant])
    numel = ParamLayout.from_module(create_model("convnet", 3, 10, 32, **expert.arch_kwargs)).numel
    data = prepare(splits, False, device)
    cond = Condenser(cfg, _RandomTrajectories(numel, 4), data, device, Path("/nonexistent"))  # type: ignore[arg-type]
    st = cond.fresh_state()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        base = psutil.Process().memory_info().rss
    cond.step(st)  # warm-up (allocator, dispatch caches); its memory counts, its time does not
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    times = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        cond.step(st)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    return {
        "variant": variant,
        "syn_steps": syn_steps,
        "keep": keep if "tuh" in variant else syn_steps,
        "seconds_per_iter": sorted(times)[len(times) // 2],
        "seconds_all": times,
        "peak_mem_mb": round(max(peak, 0) / 2**20, 1),
        "device": device.type,
        "threads": torch.get_num_threads(),
    }


def _child(queue: Any, *args: Any) -> None:
    queue.put(_measure(*args))


def run_bench(
    out: Path,
    device: str,
    steps: list[int],
    iterations: int,
    keep: int,
    echo: Callable[[str], None] = print,
    command: str = "satm-cl bench",
) -> list[dict[str, Any]]:
    """Measure every variant at every syn_steps (fresh process each); write JSONL, a plot and a README."""
    out.mkdir(parents=True, exist_ok=True)
    ctx = mp.get_context("spawn")
    rows = []
    for s in steps:
        for variant in VARIANTS:
            queue = ctx.Queue()
            proc = ctx.Process(target=_child, args=(queue, variant, s, iterations, min(keep, s), device))
            proc.start()
            row = queue.get()
            proc.join()
            echo(json.dumps(row))
            rows.append(row)
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    from satm_cl.report.plots import plot_bench

    plot_bench(rows, out / "bench.png")
    _write_readme(out, rows, command, keep)
    return rows


def _write_readme(out: Path, rows: list[dict[str, Any]], command: str, keep: int) -> None:
    by = {(r["variant"], r["syn_steps"]): r for r in rows}
    steps = sorted({r["syn_steps"] for r in rows})
    lines = [
        "# Time and memory per outer iteration",
        "",
        f"Command: `{command}` (one run; {platform.processor() or platform.machine()}, "
        f"{rows[0]['device']}, {rows[0]['threads']} threads). Workload: 3×32×32, 10 classes, IPC 1, "
        f"ConvNet-3 width 64, TUH keeps the last {keep} inner steps. Median seconds per outer "
        "iteration; peak memory is the growth over the process's memory before the first iteration "
        "(CPU: peak RSS; CUDA: max allocated).",
        "",
        "| variant | "
        + " | ".join(f"N={s} s/iter" for s in steps)
        + " | "
        + " | ".join(f"N={s} MB" for s in steps)
        + " |",
        "|---|" + "---|" * (2 * len(steps)),
    ]
    for v in VARIANTS:
        cells = [f"{by[(v, s)]['seconds_per_iter']:.3f}" for s in steps if (v, s) in by]
        mems = [f"{by[(v, s)]['peak_mem_mb']:.0f}" for s in steps if (v, s) in by]
        lines.append(f"| {v} | " + " | ".join(cells) + " | " + " | ".join(mems) + " |")
    lines += ["", "Ratios from this run:", ""]
    lo, hi = steps[0], steps[-1]
    if ("satm+tuh", lo) in by and ("satm+tuh", hi) in by:
        a, b = by[("satm+tuh", lo)]["peak_mem_mb"], by[("satm+tuh", hi)]["peak_mem_mb"]
        lines.append(f"- SATM+TUH peak memory N={hi} / N={lo}: {b / max(a, 1e-9):.2f}× (target ≤ 1.2×)")
    if ("mtt", lo) in by and ("mtt", hi) in by:
        a, b = by[("mtt", lo)]["peak_mem_mb"], by[("mtt", hi)]["peak_mem_mb"]
        lines.append(f"- MTT (full unroll) peak memory N={hi} / N={lo}: {b / max(a, 1e-9):.2f}×")
    for s in steps:
        if ("satm+tuh+tr", s) in by and ("mtt", s) in by:
            r = by[("satm+tuh+tr", s)]["seconds_per_iter"] / by[("mtt", s)]["seconds_per_iter"]
            lines.append(f"- SATM+TUH+TR time / MTT time at N={s}: {r:.2f}× (target ≤ 1.3×)")
    (out / "README.md").write_text("\n".join(lines) + "\n")
