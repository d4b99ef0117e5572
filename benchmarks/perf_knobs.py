"""Thread count, channels_last, oneDNN and torch.compile on the expert training step (issue 10).

Times the plain forward/backward/SGD step of the Fashion-MNIST preset's ConvNet (batch 128, 1×28×28)
and the condensation inner step (create_graph through a functional forward) under each setting,
interleaved in one process (rounds × settings) so a shared machine's load hits every setting alike;
prints the median images/s per setting and its ratio to the default. Usage:

    python benchmarks/perf_knobs.py [--steps 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from satm_cl.config import resolve_config
from satm_cl.models import ParamLayout, create_model, functional_forward


def _model() -> torch.nn.Module:
    cfg = resolve_config("fashion-mnist", 10).expert
    return create_model(cfg.arch, 1, 10, (28, 28), seed=0, **cfg.arch_kwargs)


def train_step_runner(
    threads: int, channels_last: bool = False, mkldnn: bool = True, compiled: bool = False
) -> Callable[[int], float]:
    """A function running `steps` SGD steps and returning images/s under the given settings."""
    model = _model()
    x = torch.randn(128, 1, 28, 28)
    y = torch.arange(128) % 10
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    fwd = torch.compile(model) if compiled else model

    def run(steps: int) -> float:
        torch.set_num_threads(threads)
        torch.backends.mkldnn.enabled = mkldnn
        t0 = time.perf_counter()
        for _ in range(steps):
            loss = F.cross_entropy(fwd(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        seconds = time.perf_counter() - t0
        torch.backends.mkldnn.enabled = True
        return steps * x.shape[0] / seconds

    return run


def inner_step_runner(threads: int, compiled: bool = False) -> Callable[[int], float]:
    """The condensation inner step (gradient with create_graph, then one SGD step on θ) + backward."""
    model = _model()
    layout = ParamLayout.from_module(model)
    theta0 = layout.flatten(model)
    xs = torch.randn(100, 1, 28, 28, requires_grad=True)
    ys = torch.arange(100) % 10

    def loss_at(theta: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(functional_forward(model, layout, theta, xs), ys)

    fn = torch.compile(loss_at) if compiled else loss_at

    def run(steps: int) -> float:
        torch.set_num_threads(threads)
        t0 = time.perf_counter()
        theta = theta0.clone().requires_grad_(True)
        start = theta
        for _ in range(steps):
            (g,) = torch.autograd.grad(fn(theta), theta, create_graph=True)
            theta = theta - 0.01 * g
        torch.autograd.grad((theta - start).pow(2).sum(), xs)
        return steps * xs.shape[0] / (time.perf_counter() - t0)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile (slow to compile)")
    args = parser.parse_args()
    settings: dict[str, Callable[[int], float]] = {
        "train: 2 threads (default)": train_step_runner(2),
        "train: 1 thread": train_step_runner(1),
        "train: channels_last": train_step_runner(2, channels_last=True),
        "train: oneDNN off": train_step_runner(2, mkldnn=False),
    }
    try:
        if args.no_compile:
            raise RuntimeError("skipped (--no-compile)")
        compiled = train_step_runner(2, compiled=True)
        compiled(2)  # compile outside the timing
        settings["train: torch.compile"] = compiled
    except Exception as exc:  # record why it does not run
        print(json.dumps({"setting": "train: torch.compile", "error": str(exc).splitlines()[0]}))
    settings["inner step: 2 threads (default)"] = inner_step_runner(2)
    try:
        if args.no_compile:
            raise RuntimeError("skipped (--no-compile)")
        inner = inner_step_runner(2, compiled=True)
        inner(2)
        settings["inner step: torch.compile"] = inner
    except Exception as exc:
        print(json.dumps({"setting": "inner step: torch.compile", "error": str(exc).splitlines()[0]}))
    for run in settings.values():
        run(2)  # warm-up
    results: dict[str, list[float]] = {name: [] for name in settings}
    for _ in range(args.rounds):
        for name, run in settings.items():
            results[name].append(run(args.steps))
    base_train = statistics.median(results["train: 2 threads (default)"])
    base_inner = statistics.median(results["inner step: 2 threads (default)"])
    for name, values in results.items():
        med = statistics.median(values)
        base = base_inner if name.startswith("inner") else base_train
        print(
            json.dumps(
                {"setting": name, "images_per_s": round(med, 1), "ratio_to_default": round(med / base, 3)}
            )
        )


if __name__ == "__main__":
    main()
