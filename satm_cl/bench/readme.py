"""README.md of a bench run: command, commit, machine, and every figure beside its ceiling."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import torch

from satm_cl.bench.registry import Row
from satm_cl.device import native_bf16

Summary = Callable[[list[Row]], list[str]]
SUMMARIES: dict[str, Summary] = {}


def summary(name: str) -> Callable[[Summary], Summary]:
    """Register the derived-ratio lines printed under suite `name`'s table."""

    def deco(fn: Summary) -> Summary:
        SUMMARIES[name] = fn
        return fn

    return deco


def commit(ignore: Path | None = None) -> str:
    """The git commit of the package's checkout (+ "-dirty" if tracked files other than those under
    `ignore`, the bench's own output, differ), or "unknown" outside a checkout."""
    root = Path(__file__).resolve().parents[2]
    exclude = [f":(exclude){ignore.resolve()}"] if ignore is not None else []
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--", ".", *exclude],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head + ("-dirty" if dirty else "")) if head else "unknown"


def machine() -> str:
    """CPU model, logical CPUs, memory, OS, torch version, and the CPU's kernel level and bf16 support
    (bf16 figures turn from a speed-up into a 6-8x slow-down without native bf16)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = psutil.virtual_memory().total / 2**30
    system = f"{platform.system()} {platform.release()}"
    kernels = torch.backends.cpu.get_cpu_capability()
    bf16 = "yes" if native_bf16(torch.device("cpu")) else "no"
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, {mem:.0f} GB RAM, {system}, torch {torch.__version__}, "
        f"CPU kernels {kernels}, native bf16 {bf16}"
    )


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def write_readme(out: Path, rows: list[Row], ctx: dict[str, Any]) -> Path:
    """Write out/README.md for `rows` measured as `ctx` describes."""
    opts = ctx["options"]
    threads = sorted({int(r["threads"]) for r in rows if r.get("threads") is not None})
    lines = [
        "# satm-cl bench",
        "",
        f"Command: `{ctx['command']}` (one run, {ctx['minutes']:.1f} min).",
        f"Commit: `{commit(out)}`.",
        f"Machine: {machine()}; torch threads in the measuring processes: {threads}; "
        f"load average before/after: {ctx['load_before'][0]:.2f} / {ctx['load_after'][0]:.2f} "
        "(the machine may be shared: compare ratios within this run, not absolute times across runs).",
        "Settings: " + ", ".join(f"{k}={v}" for k, v in opts.items()) + ".",
        *([f"Note: {ctx['note']}"] if ctx.get("note") else []),
        "",
        "Every figure sits beside a ceiling measured in the same bench run: the minimal forward/backward/"
        "SGD loop of the same network on the same batch (no augmentation, no callbacks); for condensation "
        "a minimal full MTT unroll at the same N. `ours/ceiling` is the figure of merit: for images/s "
        "higher is better (1 = at the ceiling), for seconds lower is better (1 = at the ceiling). Each "
        "job runs in a fresh process; peak memory is its growth over the process's memory before the "
        "first measured step (CPU: peak RSS; CUDA: max allocated).",
    ]
    bare = sorted({r["suite"] for r in rows if r["role"] != "ceiling" and not r.get("ceiling")})
    if bare:
        asked = opts.get("condense_ceiling", True)
        why = "its ceiling did not run" if asked else "`--no-ceiling` was given"
        lines += ["", f"No ceiling for the rows of {', '.join(bare)} ({why}): their ceiling columns show "
                  "`–` and their figures are absolute, so compare them only within this run."]
    for suite in dict.fromkeys(r["suite"] for r in rows):
        mine = [r for r in rows if r["suite"] == suite]
        lines += [
            "",
            f"## {suite}",
            "",
            "| figure | group | allocator | ours | ceiling | unit | ours/ceiling | peak MB | ceiling MB |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in mine:
            if r["role"] == "ceiling":
                continue
            cells = [
                r.get("figure"),
                r.get("group"),
                r.get("allocator"),
                r.get("value"),
                r.get("ceiling"),
                r.get("unit"),
                r.get("ratio"),
                r.get("peak_mem_mb"),
                r.get("ceiling_peak_mem_mb"),
            ]
            lines.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
        if suite in SUMMARIES:
            extra = SUMMARIES[suite](mine)
            if extra:
                lines += ["", "Ratios from this run:", "", *extra]
    if ctx.get("plot"):
        lines += ["", "![seconds and peak memory per outer iteration vs N](bench.png)"]
    path = out / "README.md"
    path.write_text("\n".join(lines) + "\n")
    return path


@summary("experts")
def _experts(rows: list[Row]) -> list[str]:
    out = []
    for r in rows:
        if r.get("legacy_images_per_s") and r.get("ceiling"):
            out.append(
                f"- per-epoch bookkeeping before issue 10 (train + full val + test accuracy every epoch): "
                f"{r['legacy_images_per_s']:.0f} images/s = {r['legacy_images_per_s'] / r['ceiling']:.2f}× "
                f"the ceiling; now {r['value']:.0f} images/s = {r['ratio']:.2f}× (target ≥ 0.8×)"
            )
        if r.get("bf16_images_per_s") and r.get("ceiling"):
            bf16 = r["bf16_images_per_s"]
            out.append(
                f"- with `precision: bf16` (forward passes under autocast, not bitwise fp32): {bf16:.0f} "
                f"images/s = {bf16 / r['ceiling']:.2f}× the fp32 ceiling, "
                f"{bf16 / r['value']:.2f}× ours in fp32"
            )
        if r.get("final_accuracy_s") is not None:
            out.append(
                f"- final train-subset + test accuracy, once per expert: {r['final_accuracy_s']:.2f} s"
            )
    return out


@summary("condense")
def _condense(rows: list[Row]) -> list[str]:
    by = {(r.get("variant"), r.get("syn_steps")): r for r in rows}
    steps = sorted({int(r["syn_steps"]) for r in rows if "syn_steps" in r})
    out = []
    for n in steps:
        tr, mtt = by.get(("satm+tuh+tr", n)), by.get(("mtt", n))
        if tr and mtt:
            out.append(
                f"- SATM+TUH+TR / MTT seconds at N={n}: {tr['value'] / mtt['value']:.2f}× (target ≤ 1.3×)"
            )
    for n in steps:
        mtt_by_alloc = {
            r.get("allocator"): r
            for r in rows
            if r.get("syn_steps") == n and r.get("variant", "").startswith("mtt")
        }
        sysm, jem = mtt_by_alloc.get("system"), mtt_by_alloc.get("jemalloc")
        if sysm and jem:
            out.append(
                f"- MTT at N={n}: system malloc {sysm['value']:.2f} s, jemalloc {jem['value']:.2f} s "
                f"→ {sysm['value'] / jem['value']:.2f}× faster with jemalloc"
            )
    if len(steps) > 1:
        lo, hi = steps[0], steps[-1]
        for v in ("satm+tuh", "mtt"):
            a, b = by.get((v, lo)), by.get((v, hi))
            if a and b and a["peak_mem_mb"]:
                out.append(f"- {v} peak memory N={hi} / N={lo}: {b['peak_mem_mb'] / a['peak_mem_mb']:.2f}×")
    return out
