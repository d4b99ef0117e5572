"""Fake SyntheticSets for the continual tests: real digits train images packaged as artifacts."""

from __future__ import annotations

from collections.abc import Callable

import torch

from satm_cl.data import DatasetSplits, Preprocessor
from satm_cl.synthetic import SyntheticSet, make_meta

FakeSet = Callable[..., SyntheticSet]


def fake_set(splits: DatasetSplits, ipc: int = 1, method: str = "satm", offset: int = 0,
             classes: list[int] | None = None, lr: float = 0.05) -> SyntheticSet:
    """`ipc` real train images per class (the `offset`-th onwards) as a SyntheticSet in model-input space."""
    prep = Preprocessor.fit(splits.train.x, splits.mean, splits.std, zca=False)
    keep = list(range(splits.num_classes)) if classes is None else classes
    idx = torch.cat([(splits.train.y == c).nonzero().flatten()[offset : offset + ipc] for c in keep])
    meta = make_meta(dataset=splits.name, class_names=splits.class_names, ipc=ipc, method=method,
                     image_shape=splits.image_shape, mean=splits.mean, std=splits.std, config={}, seed=0)
    return SyntheticSet(prep.transform(splits.train.x[idx]), splits.train.y[idx].clone(), lr, meta)
