"""Run bench jobs, each in a fresh process with a timeout; pair figures with ceilings; write results.

A child that fails or overruns its timeout fails the whole bench with a SatmError naming the job and
the child's own one-line error, so `satm-cl bench` exits 2 instead of waiting.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from satm_cl.allocator import env_for
from satm_cl.bench.child import ERROR, RESULT
from satm_cl.bench.registry import BenchOptions, Job, Row, plan
from satm_cl.errors import SatmError


def run_job(job: Job, timeout_s: float) -> Row | None:
    """Measure `job` in a fresh `python -m satm_cl.bench.child`; None if its allocator is not installed."""
    env = dict(os.environ) if job.allocator is None else env_for(job.allocator)
    if env is None:
        return None
    request = json.dumps({"measure": job.measure, "params": job.params})
    try:
        done = subprocess.run(
            [sys.executable, "-m", "satm_cl.bench.child"],
            input=request,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        raise SatmError(f"bench job {job.label} did not finish within {timeout_s:g} s (killed)") from None
    lines = done.stdout.splitlines()
    result = next((ln[len(RESULT) :] for ln in reversed(lines) if ln.startswith(RESULT)), None)
    if done.returncode != 0 or result is None:
        error = next((ln[len(ERROR) :] for ln in reversed(lines) if ln.startswith(ERROR)), None)
        if error is None:
            tail = [ln for ln in done.stderr.splitlines() if ln.strip()]
            error = tail[-1] if tail else f"exit code {done.returncode}, no output"
        raise SatmError(f"bench job {job.label} failed: {error}")
    row: Row = json.loads(result)
    row.update(suite=job.suite, measure=job.measure, group=job.group, role=job.role)
    row["requested_allocator"] = job.allocator or "default"
    if job.allocator and "variant" in row:
        row["variant"] = f"{row['variant']} [{job.allocator}]"
    if job.role == "ceiling" and "variant" in row:
        row["variant"] = "ceiling"
    return row


def pair_ceilings(rows: list[Row]) -> list[Row]:
    """Give every row without its own ceiling the value of its group's ceiling row; add ours/ceiling."""
    ceilings = {(r["suite"], r["group"]): r for r in rows if r["role"] == "ceiling"}
    for r in rows:
        if r["role"] == "ceiling":
            continue
        ref = ceilings.get((r["suite"], r["group"]))
        if r.get("ceiling") is None and ref is not None:
            r["ceiling"] = ref["value"]
            r["ceiling_peak_mem_mb"] = ref.get("peak_mem_mb")
        if r.get("ceiling"):
            r["ratio"] = r["value"] / r["ceiling"]
    return rows


PARTIAL = "results.partial.jsonl"  # rows of a bench still running (or interrupted)


def run_bench(
    out: Path,
    suites: list[str],
    opts: BenchOptions,
    echo: Callable[[str], None] = print,
    command: str = "satm-cl bench",
) -> list[Row]:
    """Plan the suites, measure every job (fresh process each), write results.jsonl, README.md, plot."""
    jobs = plan(suites, opts)
    out.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    started = time.time()
    rows: list[Row] = []
    # rows go to a side file as measured: an interrupted bench keeps what it has and leaves the
    # previous complete results.jsonl untouched; finish() replaces it and drops the side file
    results = out / PARTIAL
    results.write_text("")
    for job in jobs:
        row = run_job(job, opts.timeout_s)
        if row is None:
            echo(f"skipped {job.label}: allocator {job.allocator} not installed")
            continue
        echo(json.dumps(row))
        rows.append(row)
        with results.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
    context: dict[str, Any] = {
        "command": command,
        "suites": suites,
        "options": asdict(opts),
        "load_before": load,
        "load_after": os.getloadavg(),
        "minutes": (time.time() - started) / 60,
    }
    finish(out, rows, context)
    return rows


def finish(out: Path, rows: list[Row], context: dict[str, Any]) -> None:
    """Pair ceilings, then write results.jsonl, the plot (condensation rows) and README.md.

    Also used to write up the rows of an interrupted run (each row is echoed as JSON as measured)."""
    from satm_cl.bench.readme import write_readme

    pair_ceilings(rows)
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (out / PARTIAL).unlink(missing_ok=True)
    condense_rows = [r for r in rows if r["suite"] == "condense"]
    if condense_rows:
        from satm_cl.report.plots import plot_bench

        plot_bench(condense_rows, out / "bench.png")
    write_readme(out, rows, {**context, "plot": bool(condense_rows)})
