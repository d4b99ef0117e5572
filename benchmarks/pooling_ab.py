"""ATen's `nn.AvgPool2d(2)` against `models.pooling.AvgPool2x2` (bitwise the same numbers) in the
Fashion-MNIST preset's hot paths, interleaved in one process: the expert SGD step (batch 128), the
evaluation SGD step (the 100-image IPC 10 set), scoring 10k test images, and the condensation inner
unroll (N steps with create_graph, then the hypergradient; the preset's 50-image inner batch). Prints
the median time of each and the ratio ATen / ours, and checks every pair gave equal numbers. Usage:

    python benchmarks/pooling_ab.py [--rounds 3] [--syn-steps 20] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from satm_cl.config import resolve_config
from satm_cl.models import ParamLayout, create_model, functional_forward
from satm_cl.models.pooling import AvgPool2x2
from satm_cl.training import accuracy


def _model(pool: str) -> nn.Module:
    """The preset's ConvNet with its pooling layers as ours ("ours") or ATen's ("aten")."""
    cfg = resolve_config("fashion-mnist", 10).expert
    model = create_model(cfg.arch, 1, 10, (28, 28), seed=0, **cfg.arch_kwargs)
    if pool == "aten":
        for i, layer in enumerate(model.features):  # type: ignore[arg-type]
            if isinstance(layer, AvgPool2x2):
                model.features[i] = nn.AvgPool2d(2)  # type: ignore[index]
    return model


def sgd_steps(pool: str, batch: int, steps: int) -> Callable[[], torch.Tensor]:
    model = _model(pool)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(batch, 1, 28, 28, generator=g), torch.arange(batch) % 10

    def run() -> torch.Tensor:
        for _ in range(steps):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    return run


def scoring(pool: str, images: int) -> Callable[[], torch.Tensor]:
    model = _model(pool)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(images, 1, 28, 28, generator=g), torch.arange(images) % 10
    return lambda: torch.tensor(accuracy(model, x, y))


def unroll(pool: str, syn_steps: int, batch: int) -> Callable[[], torch.Tensor]:
    model = _model(pool)
    layout = ParamLayout.from_module(model)
    g = torch.Generator().manual_seed(2)
    theta0 = layout.flatten(model).detach()
    target = theta0 + 0.01 * torch.randn(layout.numel, generator=g)
    xs = torch.randn(100, 1, 28, 28, generator=g).requires_grad_(True)
    ys = torch.arange(100) % 10
    lr = torch.tensor(0.03, requires_grad=True)
    order = torch.randperm(100, generator=g)

    def run() -> torch.Tensor:
        theta = theta0.clone().requires_grad_(True)
        for i in range(syn_steps):
            idx = order.roll(i * batch)[:batch]
            loss = F.cross_entropy(functional_forward(model, layout, theta, xs[idx]), ys[idx])
            (grad,) = torch.autograd.grad(loss, theta, create_graph=True)
            theta = theta - lr * grad
        match = (theta - target).pow(2).sum() / (theta0 - target).pow(2).sum()
        gx, glr = torch.autograd.grad(match, [xs, lr])
        return torch.cat([gx.flatten(), glr.reshape(1)])

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--syn-steps", type=int, default=20)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    cases: dict[str, Callable[[str], Callable[[], torch.Tensor]]] = {
        "expert step (batch 128) x20": lambda p: sgd_steps(p, 128, 20),
        "evaluation step (100 images) x30": lambda p: sgd_steps(p, 100, 30),
        "scoring 10k test images": lambda p: scoring(p, 10_000),
        f"condensation unroll N={args.syn_steps} (batch 50) + hypergradient": lambda p: unroll(
            p, args.syn_steps, 50
        ),
    }
    rows = []
    for name, make in cases.items():
        runs = {p: make(p) for p in ("aten", "ours")}
        times: dict[str, list[float]] = {p: [] for p in runs}
        outs = {p: runs[p]() for p in runs}  # warm-up, and the numbers to compare
        for r in range(args.rounds):
            for p in ("aten", "ours") if r % 2 == 0 else ("ours", "aten"):
                fresh = make(p)  # same start every round, so each round does identical work
                t0 = time.perf_counter()
                fresh()
                times[p].append(time.perf_counter() - t0)
        med = {p: statistics.median(t) for p, t in times.items()}
        row = {
            "case": name,
            "aten_s": med["aten"],
            "ours_s": med["ours"],
            "aten_over_ours": med["aten"] / med["ours"],
            "equal": bool(torch.equal(outs["aten"], outs["ours"])),
        }
        rows.append(row)
        print(
            f"{name}: ATen {med['aten']:.3f} s, ours {med['ours']:.3f} s, "
            f"{row['aten_over_ours']:.2f}x, equal numbers: {row['equal']}",
            flush=True,
        )
    meta = {"threads": torch.get_num_threads(), "torch": torch.__version__, "rounds": args.rounds}
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
