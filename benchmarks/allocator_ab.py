"""Alternating allocator A/B of one MTT outer iteration (docs/performance.md): system malloc and
jemalloc in turn, each in a fresh bench child, printing wall and user/system CPU seconds per iteration.
`--jemalloc-confs` measures jemalloc under several `MALLOC_CONF` strings (default: the project's).

    python benchmarks/allocator_ab.py [--steps 2] [--width 128] [--ipc 10] [--rounds 2]
                                      [--jemalloc-confs CONF;CONF...]
"""

from __future__ import annotations

import argparse
import json
import os

from satm_cl.allocator import MALLOC_CONF
from satm_cl.bench import Job, run_job


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--ipc", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--jemalloc-confs", default=MALLOC_CONF,
                        help="';'-separated MALLOC_CONF strings, one jemalloc arm each (default: ours)")
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
    arms = [("system", None)] + [("jemalloc", c) for c in args.jemalloc_confs.split(";") if c]
    for _ in range(args.rounds):
        for alloc, conf in arms:
            os.environ.pop("MALLOC_CONF", None)
            if conf:
                os.environ["MALLOC_CONF"] = conf  # the bench child keeps a MALLOC_CONF it is given
            row = run_job(Job("condense", "condense", params, allocator=alloc, group=f"N={args.steps}"), 3600)
            if row is None:
                print(json.dumps({"allocator": alloc, "skipped": "not installed"}))
                continue
            print(json.dumps({**{k: row[k] for k in keys}, "malloc_conf": conf}), flush=True)

if __name__ == "__main__":
    main()
