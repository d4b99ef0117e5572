"""The in-memory dataset contract every loader returns, and the dataset registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from satm_cl.registry import Registry


@dataclass(frozen=True)
class Split:
    """Images float32 [N,C,H,W] in [0,1] (raw pixel space, not normalised) and labels int64 [N]."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True)
class DatasetSplits:
    """A dataset held in memory: train / val (carved from train, for model selection) / test.

    `mean` and `std` are per-channel statistics of the train split; they define the model-input
    space together with optional ZCA (see `satm_cl.data.preprocess`).
    """

    name: str
    train: Split
    val: Split
    test: Split
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.train.x.shape[1:]
        return int(c), int(h), int(w)


@dataclass(frozen=True)
class DatasetOptions:
    """What a loader may need from the user."""

    data_dir: Path | None = None
    download: bool = False
    val_fraction: float = 0.1
    seed: int = 0
    # side length images are resized to (ImageNet subsets, Tiny ImageNet); None = the dataset's default
    resolution: int | None = None


Loader = Callable[[DatasetOptions], DatasetSplits]
DATASETS: Registry[Loader] = Registry("dataset")
# status(options) -> "ready" or a short hint such as "needs --data-dir" / "needs extra mnist"
STATUS: dict[str, Callable[[DatasetOptions], str]] = {}
