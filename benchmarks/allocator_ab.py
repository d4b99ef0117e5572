"""Alternating allocator A/B of one MTT outer iteration (docs/performance.md): system malloc and
jemalloc in turn, each in a fresh bench child, printing wall and user/system CPU seconds per iteration.

    python benchmarks/allocator_ab.py [--steps 2] [--width 128] [--ipc 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json

from satm_cl.bench import Job, run_job


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--ipc", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    params = {
        "syn_steps": args.steps,
        "iterations": args.iterations,
        "keep": args.steps,
        "width": args.width,
        "ipc": args.ipc,
        "device": "cpu",
        "variant": "mtt",
    }
    keys = ("allocator", "seconds_all", "user_s_per_iter", "sys_s_per_iter", "peak_mem_mb")
    for _ in range(args.rounds):
        for alloc in ("system", "jemalloc"):
            row = run_job(Job("condense", "condense", params, allocator=alloc, group=f"N={args.steps}"), 3600)
            if row is None:
                print(json.dumps({"allocator": alloc, "skipped": "not installed"}))
                continue
            print(json.dumps({k: row[k] for k in keys}), flush=True)


if __name__ == "__main__":
    main()
