"""Registries of `satm-cl bench`: measurements (run in a child process) and suites (lists of jobs).

A new measurement is a function `params -> row` registered with `@measurement("name")` in a module
listed in `MEASUREMENT_MODULES` (the child imports them), plus the jobs a suite plans for it.
A row holds `figure`, `value`, `unit`, `better` ("higher" or "lower") and, when measured in the same
child, `ceiling`; a job with `role="ceiling"` instead supplies the ceiling of every row of its `group`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from satm_cl.errors import SatmError

Row = dict[str, Any]
Measure = Callable[[dict[str, Any]], Row]

MEASUREMENTS: dict[str, Measure] = {}
MEASUREMENT_MODULES: list[str] = [
    "satm_cl.bench.experts",
    "satm_cl.bench.evaluate",
    "satm_cl.bench.condense",
]


def measurement(name: str) -> Callable[[Measure], Measure]:
    """Register a measurement function under `name`."""

    def deco(fn: Measure) -> Measure:
        MEASUREMENTS[name] = fn
        return fn

    return deco


def load_measurements() -> dict[str, Measure]:
    """Import every measurement module (registering its measurements) and return the registry."""
    for module in MEASUREMENT_MODULES:
        importlib.import_module(module)
    return MEASUREMENTS


def create_measurement(name: str) -> Measure:
    """The registered measurement `name` (SatmError naming the valid ones otherwise)."""
    found = load_measurements()
    if name not in found:
        raise SatmError(f"unknown bench measurement {name!r}; valid: {', '.join(sorted(found))}")
    return found[name]


@dataclass(frozen=True)
class BenchOptions:
    """Sizes of every suite; the defaults are the workloads of issue 10 (see docs/performance.md)."""

    device: str = "cpu"
    # experts: the Fashion-MNIST preset's ConvNet on 1×28×28 random data
    expert_images: int = 2000
    expert_epochs: int = 1
    expert_val_images: int = 6000
    test_images: int = 10000
    # evaluate: runs of a 100-image set
    eval_images: int = 100
    eval_epochs: int = 300
    eval_runs: int = 5
    # condense: CIFAR-shaped 3×32×32, ConvNet-3 of this width, IPC images per class, DSA off
    steps: tuple[int, ...] = (10, 20, 40)
    iterations: int = 2
    keep: int = 10
    width: int = 128
    ipc: int = 10
    variants: tuple[str, ...] = ("mtt", "satm", "satm+tuh", "satm+tuh+tr")
    condense_ceiling: bool = True  # the full-unroll ceiling needs MTT's memory (grows with N)
    # the allocators MTT's outer iteration is compared under (each in its own process)
    allocators: tuple[str, ...] = ("jemalloc", "system")
    timeout_s: float = 3600.0

    def __post_init__(self) -> None:
        from satm_cl.allocator import CHOICES

        bad = [a for a in self.allocators if a not in CHOICES]
        if bad:
            raise SatmError(f"unknown allocator {bad[0]!r}; valid: {', '.join(CHOICES)}")
        sizes = (self.expert_images, self.expert_epochs, self.eval_images, self.eval_epochs, self.eval_runs)
        if min((*sizes, self.test_images, self.iterations, self.keep, self.width, self.ipc, *self.steps)) < 1:
            raise SatmError(
                "bench sizes (images, epochs, runs, steps, iterations, keep, width, ipc) must be ≥ 1"
            )
        if self.timeout_s <= 0:
            raise SatmError("--timeout must be positive")


def parse_ints(text: str, what: str) -> tuple[int, ...]:
    """Comma-separated integers ("10,20,40"); anything else is a one-line SatmError."""
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise SatmError(f"{what} takes comma-separated integers, got {text!r}") from None
    if not values:
        raise SatmError(f"{what} is empty")
    return values


@dataclass(frozen=True)
class Job:
    """One measurement in a fresh process: what, with which parameters, under which allocator
    (None: the bench's own), and the group whose ceiling it is (role "ceiling") or is compared with."""

    suite: str
    measure: str
    params: dict[str, Any] = field(default_factory=dict)
    allocator: str | None = None
    group: str = ""
    role: str = "ours"

    @property
    def label(self) -> str:
        extra = f" [{self.allocator}]" if self.allocator else ""
        return f"{self.suite}/{self.measure} {self.group}{extra}".strip()


SuitePlan = Callable[[BenchOptions], list[Job]]
SUITES: dict[str, SuitePlan] = {}


def suite(name: str) -> Callable[[SuitePlan], SuitePlan]:
    """Register the job planner of suite `name` (`satm-cl bench --suite name`)."""

    def deco(fn: SuitePlan) -> SuitePlan:
        SUITES[name] = fn
        return fn

    return deco


def plan(names: list[str], opts: BenchOptions) -> list[Job]:
    """The jobs of the named suites in order ("all": every registered suite)."""
    load_measurements()
    wanted = list(SUITES) if "all" in names else names
    unknown = [n for n in wanted if n not in SUITES]
    if unknown:
        raise SatmError(f"unknown bench suite {unknown[0]!r}; valid: {', '.join([*SUITES, 'all'])}")
    return [job for name in dict.fromkeys(wanted) for job in SUITES[name](opts)]
