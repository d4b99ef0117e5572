"""The measuring child: `python -m satm_cl.bench.child` reads one job as JSON on stdin, runs the
measurement and prints one result line; on failure it prints one error line and exits 1."""

from __future__ import annotations

import json
import sys
import traceback

RESULT = "SATM-BENCH-RESULT "
ERROR = "SATM-BENCH-ERROR "


def main() -> int:
    """Run the job on stdin; its row (or its error) is the last line on stdout."""
    try:
        import torch

        from satm_cl.allocator import current
        from satm_cl.bench.registry import create_measurement

        job = json.loads(sys.stdin.read())
        row = create_measurement(str(job["measure"]))(dict(job["params"]))
        row.setdefault("threads", torch.get_num_threads())
        row["allocator"] = current()
    except BaseException as exc:  # report every failure, including KeyboardInterrupt, as one line
        traceback.print_exc(file=sys.stderr)
        line = (str(exc).splitlines() or [""])[0]
        print(ERROR + f"{type(exc).__name__}: {line}", flush=True)
        return 1
    print(RESULT + json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
