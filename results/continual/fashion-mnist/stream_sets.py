"""Make the plain stream sets of run.sh's cpu scale pair by pair (its `sets` stage).

Every stage of run.sh walks class orders, and each of its jobs condenses the stream sets it meets. One class
pair's expert store (6 experts, about 8.5 min of one thread) serves satm-stream and mtt-stream at IPC 10, 1
and 5, so making a pair's six sets one after another uses its store while it exists: each store is trained
once per machine, even where the cache does not outlive a working session (the sets are small and are kept
in `runs/cpu/memories/stream`). The sets are the ones the stages would make: the same function
(`experience_condenser`), the same pinned config (`condense.json`), one torch thread (run.sh's `--threads
1`); a stage later finds them and checks each one's config.

usage: python results/continual/fashion-mnist/stream_sets.py [--part K/N] [--ipcs 10,1,5] [--methods satm,mtt]
                                                             [--data-dir DIR]
  --part K/N   every N-th pair from the K-th (0-based), for N processes side by side (default 0/1)
  --ipcs, --methods   which sets per pair (default: the sets stage's; Part C's IPC 20 and 50 need `--ipcs 20,50
               --methods satm`, made ahead so two processes can split Part C without condensing a set twice)
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
STEPS, ORDERS, IPCS, METHODS = 5, (0, 1, 2), "10,1,5", "satm,mtt"


def class_pairs() -> list[tuple[int, ...]]:
    """The experiences of run.sh's class orders (5 steps of 2 Fashion-MNIST classes), each pair once, in
    the order the class orders first meet them."""
    from satm_cl.continual.scenarios import draw_class_order

    pairs: list[tuple[int, ...]] = []
    for seed in ORDERS:
        order = draw_class_order(10, seed)
        for k in range(STEPS):
            pair = tuple(sorted(order[2 * k : 2 * k + 2]))
            if pair not in pairs:
                pairs.append(pair)
    return pairs


def main(argv: list[str] | None = None) -> int:
    from satm_cl.allocator import maybe_reexec

    maybe_reexec()  # jemalloc, as the CLI runs (about 1.8x faster unrolls)
    import torch

    from satm_cl.continual.runner import experience_condenser
    from satm_cl.device import resolve_device
    from satm_cl.errors import SatmError

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", default="0/1", help="K/N: every N-th pair from the K-th")
    parser.add_argument("--ipcs", default=IPCS, help="comma-separated images per class (default %(default)s)")
    parser.add_argument("--methods", default=METHODS, help="comma-separated: satm, mtt (default %(default)s)")
    parser.add_argument("--data-dir", type=Path, default=None, help="where the Fashion-MNIST idx files are")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    try:
        k, n = (int(v) for v in args.part.split("/"))
        if not 0 <= k < n:
            raise ValueError
    except ValueError:
        print(f"error: --part must be K/N with 0 <= K < N, got {args.part!r}", file=sys.stderr)
        return 2
    methods = [m for m in args.methods.split(",") if m]
    try:
        ipcs = [int(v) for v in args.ipcs.split(",") if v]
        if not ipcs or min(ipcs) < 1 or not set(methods) <= {"satm", "mtt"} or not methods:
            raise ValueError
    except ValueError:
        print(f"error: --ipcs takes positive integers and --methods satm and/or mtt, got {args.ipcs!r} and "
              f"{args.methods!r}", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    overrides = json.loads((HERE / "condense.json").read_text())
    root = HERE / "runs" / "cpu" / "memories" / "stream"
    device = resolve_device(args.device)
    mine = class_pairs()[k::n]
    try:
        for (i, pair), ipc, method in itertools.product(enumerate(mine, 1), ipcs, methods):
            print(f"[{i}/{len(mine)}] classes {pair[0]}-{pair[1]} {method} ipc {ipc}", file=sys.stderr,
                  flush=True)
            make = experience_condenser(method, "fashion-mnist", ipc, root, device, None, args.data_dir,
                                        progress=True, overrides=overrides)
            make(list(pair))
    except SatmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
