"""Class-incremental Avalanche benchmarks over a registry dataset, in a SyntheticSet's model-input space.

Train experiences hold the real train split, test experiences the test split, both mapped by `prep`
(normalisation, optional ZCA) so condensed memories, real memories and test images share one space.
The class order is a permutation drawn from `order_seed`; classes are split evenly over the steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from avalanche.benchmarks.scenarios import CLScenario, class_incremental_benchmark
from avalanche.benchmarks.utils import DataAttribute, TaskAwareSupervisedClassificationDataset
from torch.utils.data import TensorDataset

from satm_cl.data import DatasetSplits, Preprocessor
from satm_cl.errors import SatmError
from satm_cl.seeding import make_generator

TASK_LABEL = 0  # class-incremental: one task, one head


def tensor_dataset(
    x: torch.Tensor,
    y: torch.Tensor,
    train_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    extra: tuple[torch.Tensor, ...] = (),
) -> TaskAwareSupervisedClassificationDataset:
    """A task-aware Avalanche dataset of (x, y, t=0, *extra) samples; `train_transform` acts on x in training
    (`extra`: per-sample tensors such as DER's stored logits)."""
    x, y = x.detach().cpu().float(), y.detach().cpu().long()
    t = torch.full_like(y, TASK_LABEL)
    groups: dict[str, Any] = {"train": train_transform, "eval": None}
    return TaskAwareSupervisedClassificationDataset(
        [TensorDataset(x, y, t, *(e.detach().cpu() for e in extra))],
        data_attributes=[
            DataAttribute(y.tolist(), "targets"),
            DataAttribute(t.tolist(), "targets_task_labels"),
        ],
        transform_groups=groups,  # type: ignore[arg-type]
    )


def draw_class_order(num_classes: int, order_seed: int) -> list[int]:
    """The class order for `order_seed`: a permutation of range(num_classes) from the project's seeding."""
    return [int(c) for c in torch.randperm(num_classes, generator=make_generator(order_seed, "class-order"))]


@dataclass(frozen=True, eq=False)
class Scenario:
    """An Avalanche class-incremental benchmark plus what produced it (recorded with every result)."""

    benchmark: CLScenario
    class_order: list[int]
    step_classes: list[list[int]]
    test_x: torch.Tensor  # model-input space, kept as tensors for fast from-scratch evaluation
    test_y: torch.Tensor
    train_x: torch.Tensor
    train_y: torch.Tensor
    num_classes: int

    @property
    def train_stream(self) -> Any:
        return self.benchmark.train_stream

    @property
    def test_stream(self) -> Any:
        return self.benchmark.test_stream

    @property
    def steps(self) -> int:
        return len(self.step_classes)

    @property
    def classes_per_step(self) -> int:
        return len(self.step_classes[0])

    def test_mask(self, classes: list[int]) -> torch.Tensor:
        """Boolean mask over the test split selecting `classes`."""
        return torch.isin(self.test_y, torch.tensor(classes, dtype=self.test_y.dtype))


def make_scenario(splits: DatasetSplits, steps: int, order_seed: int, prep: Preprocessor) -> Scenario:
    """Split `splits` class-incrementally into `steps` experiences (train/test splits) in `prep`'s space."""
    n = splits.num_classes
    if steps < 1 or n % steps:
        raise SatmError(f"{splits.name} has {n} classes, which do not split evenly into {steps} steps")
    order = draw_class_order(n, order_seed)
    per = n // steps
    with torch.no_grad():
        train_x, test_x = prep.transform(splits.train.x), prep.transform(splits.test.x)
    bench = class_incremental_benchmark(
        {"train": tensor_dataset(train_x, splits.train.y), "test": tensor_dataset(test_x, splits.test.y)},
        class_order=order,
        num_experiences=steps,
    )
    return Scenario(
        benchmark=bench,
        class_order=order,
        step_classes=[order[i * per : (i + 1) * per] for i in range(steps)],
        test_x=test_x,
        test_y=splits.test.y,
        train_x=train_x,
        train_y=splits.train.y,
        num_classes=n,
    )
