"""The retrain protocol's per-step scoring: each seen experience's test classes scored once, the overall
figure from their hit counts (`continual.protocols._row`), against scoring the union of seen classes a
second time (the code before 2026-11-28). Fashion-MNIST-shaped: 10k 1×28×28 test images, 5 steps of 2
classes, the preset ConvNet (width 64, depth 3, instance norm), one thread, rounds interleaved. Prints the
median seconds per retrain job's scoring (steps 0–4) and the ratio, and checks both give the same numbers.

    python benchmarks/retrain_scoring.py [--rounds 3] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass

import torch

from satm_cl.continual.protocols import _row
from satm_cl.models import create_model
from satm_cl.training import accuracy


@dataclass
class _Scenario:
    """The slice of a `Scenario` that `_row` reads."""

    test_x: torch.Tensor
    test_y: torch.Tensor
    step_classes: list[list[int]]

    def test_mask(self, classes: list[int]) -> torch.Tensor:
        return torch.isin(self.test_y, torch.tensor(classes))


def _union_twice(model: torch.nn.Module, sc: _Scenario, step: int) -> tuple[list[float], float]:
    """Before: every experience, then the union of them all again."""
    row = [accuracy(model, sc.test_x[sc.test_mask(c)], sc.test_y[sc.test_mask(c)])
           for c in sc.step_classes[: step + 1]]
    seen = sc.test_mask([c for classes in sc.step_classes[: step + 1] for c in classes])
    return row, accuracy(model, sc.test_x[seen], sc.test_y[seen])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=None, help="write the medians here as JSON")
    args = parser.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    sc = _Scenario(torch.randn(10_000, 1, 28, 28, generator=g), torch.arange(10).repeat(1000),
                   [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]])
    model = create_model("convnet", 1, 10, 28, seed=0, width=64, depth=3, norm="instance")
    ways = {"union_twice": lambda s: _union_twice(model, sc, s), "once": lambda s: _row(model, sc, s)}
    times: dict[str, list[float]] = {k: [] for k in ways}
    results: dict[str, list[tuple[list[float], float]]] = {}
    for _ in range(args.rounds):
        for name, way in ways.items():
            start = time.perf_counter()
            results[name] = [way(s) for s in range(5)]
            times[name].append(time.perf_counter() - start)
    assert results["once"] == results["union_twice"], "the two ways disagree"
    medians = {k: statistics.median(v) for k, v in times.items()}
    for name, sec in medians.items():
        print(f"{name:12s} {sec:6.2f} s per retrain job's scoring (5 steps)")
    print(f"ratio union_twice / once: {medians['union_twice'] / medians['once']:.2f}x; same numbers: yes")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"median_s": medians, "rounds": args.rounds}, f, indent=1)


if __name__ == "__main__":
    main()
