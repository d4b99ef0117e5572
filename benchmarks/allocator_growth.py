"""Resident memory of a continual retrain job that condenses stream sets, with and without
`allocator.release_free_memory` (docs/performance.md, "Allocator"). Each arm runs the same short job in a
fresh `satm-cl evaluate` process (5 steps, one class order, satm-stream at IPC 1: five condensations of
`--iterations` outer iterations in one process, as a grid worker makes them) and samples its VmRSS every
second: `released` is the code as it is, `never-released` the same with the release calls made no-ops (the
code before 2026-11-28), `system` the release on glibc's malloc (`SATM_CL_ALLOCATOR=system`). Prints
early, peak and end RSS, wall time and the mean seconds per outer iteration per arm.

Why: under jemalloc's never-purge setting such a process grew by about 1.5 GB per 300-iteration
condensation on Fashion-MNIST, while the live tensors stayed constant.

    python benchmarks/allocator_growth.py [--dataset fashion-mnist] [--iterations 60]
                                          [--arms released,never-released,system] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE = Path(__file__).resolve().parents[1] / "results" / "continual" / "fashion-mnist" / "condense.json"
# the child: the CLI, with the release calls made no-ops in the `never-released` arm
CHILD = """
import sys
if sys.argv[1] == "never-released":
    import satm_cl.allocator, satm_cl.execution
    satm_cl.allocator.release_free_memory = satm_cl.execution.release_free_memory = lambda: False
sys.argv = ["satm-cl", *sys.argv[2:]]
from satm_cl.cli import main
main()
"""
ARMS = ("released", "never-released", "system")


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run_arm(arm: str, dataset: str, base: dict[str, object], iterations: int) -> dict[str, object]:
    """One job in arm `arm`; RSS sampled every second."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "condense.json"
        cfg.write_text(json.dumps({**base, "iterations": iterations, "eval_every": max(1, iterations // 2)}))
        cmd = [sys.executable, "-c", CHILD, arm, "evaluate", "--suite", "continual", "--dataset", dataset,
               "--steps", "5", "--orders", "1", "--seed", "2", "--ipc", "1", "--memories", "satm-stream",
               "--condense-config", str(cfg), "--protocol", "retrain", "--epochs", "30",
               "--memory-dir", f"{tmp}/mem", "--out", f"{tmp}/out", "--jobs", "1", "--threads", "1"]
        alloc = "system" if arm == "system" else "jemalloc"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "SATM_CL_ALLOCATOR": alloc}
        start = time.perf_counter()
        # stderr to a file, not a pipe: the progress bars would fill a pipe and stall the child
        with Path(tmp, "stderr.txt").open("w") as errors:
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=errors)
            samples: list[float] = []
            while proc.poll() is None:
                rss = _rss_mb(proc.pid)
                if rss is not None:
                    samples.append(rss)
                time.sleep(1.0)
        err = Path(tmp, "stderr.txt").read_text()
        lines = [line for f in Path(tmp, "mem").rglob("log.jsonl") for line in f.read_text().splitlines()]
        secs = [row["seconds"] for row in map(json.loads, lines) if "seconds" in row]
        if proc.returncode != 0:
            raise SystemExit(f"arm {arm!r} failed ({proc.returncode}): {err.strip().splitlines()[-1:]}")
    early = samples[len(samples) // 10]  # after data loading and the first set's start
    return {"arm": arm, "s_per_iter": round(sum(secs) / max(1, len(secs)), 4),
            "wall_s": round(time.perf_counter() - start, 1),
            "rss_early_mb": round(early), "rss_peak_mb": round(max(samples)),
            "rss_end_mb": round(samples[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--base-config", type=Path, default=BASE,
                        help="condensation overrides (default: the continual cpu scale's pinned config, "
                        "whose expert stores a machine that ran it has cached)")
    parser.add_argument("--arms", default=",".join(ARMS), help="comma-separated, of: " + ", ".join(ARMS))
    parser.add_argument("--out", default=None, help="write the rows here as JSON")
    args = parser.parse_args()
    base = json.loads(args.base_config.read_text())
    rows = [run_arm(a, args.dataset, base, args.iterations) for a in args.arms.split(",") if a]
    for row in rows:
        print(json.dumps(row), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
