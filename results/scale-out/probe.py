"""Per-job CPU share in process vs on two local workers: the same fixed matmul job, wall and CPU seconds.

On a machine shared with other sessions and Linux autogroup scheduling, a session's processes share one
fair slice, so two workers may get no more CPU than one; this probe measures that (written to probe.json).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

from satm_cl.execution import ExecConfig, Job, run_jobs


def work(n: int) -> tuple[float, float]:
    """(wall s, CPU s) of n small single-threaded matmuls."""
    t, c = time.time(), time.process_time()
    x = torch.randn(256, 256)
    for _ in range(n):
        x = torch.tanh(x @ x / 256)
    return time.time() - t, time.process_time() - c


def main() -> None:
    out: dict[str, object] = {}
    autogroup = Path("/proc/sys/kernel/sched_autogroup_enabled")
    out["autogroup"] = autogroup.read_text().strip() if autogroup.exists() else "n/a"
    for name, cfg in (("local", ExecConfig()), ("local-jobs2", ExecConfig(jobs=2))):
        t = time.time()
        res = [r.value for r in run_jobs([Job(str(i), work, 3000) for i in range(4)], cfg)]
        out[name] = {
            "wall_s": time.time() - t,
            "cpu_share_per_job": sum(c / w for w, c in res) / len(res),
        }
    Path(sys.argv[1]).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
