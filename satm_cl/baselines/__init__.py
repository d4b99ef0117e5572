"""Real-subset baselines (random, herding, k-center, full) as SyntheticSets beside the condensed ones.

A baseline is built from the train split only (never val/test), mapped into the same model-input space as
the dataset's condensed sets (train-split normalisation, ZCA iff the preset whitens), with labels in class
order, `lr` = the preset's `lr_init` (the inner LR an MTT run starts from, used to evaluate it) and
`meta["config"]` holding the selector settings plus the preset's evaluation DSA and epochs.

The whole-train-split baseline `full` has no images-per-class: its artifact metadata stores `ipc = -1`
(`FULL_IPC`) and evaluation records store `ipc = null`, which the reporter shows as "full data".
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from satm_cl.baselines.presets import preset_for
from satm_cl.baselines.selectors import (
    FEATURE_EPOCHS,
    SELECTORS,
    SelectionContext,
    embed,
    herding_order,
    kcenter_order,
)
from satm_cl.data import Preprocessor, create_dataset
from satm_cl.errors import SatmError
from satm_cl.synthetic import SyntheticSet, make_meta

__all__ = [
    "FEATURE_EPOCHS",
    "FULL_IPC",
    "SELECTORS",
    "create_baseline",
    "embed",
    "herding_order",
    "kcenter_order",
    "list_baselines",
    "preset_for",
]

FULL_IPC = -1


def list_baselines() -> list[str]:
    """Names accepted by `create_baseline`, sorted."""
    return SELECTORS.names()


def create_baseline(
    name: str,
    dataset: str,
    ipc: int | None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    data_dir: str | Path | None = None,
) -> SyntheticSet:
    """Select a real subset of `dataset`'s train split with selector `name` and package it as a SyntheticSet,
    so every evaluation and continual runner treats baselines exactly like condensed sets."""
    selector = SELECTORS.get(name)
    full = name == "full"
    if not full and (ipc is None or isinstance(ipc, bool) or not isinstance(ipc, int) or ipc < 1):
        raise SatmError(f"baseline {name} needs ipc >= 1, got {ipc!r}")
    start = time.perf_counter()
    cfg, preset = preset_for(dataset, None if full else ipc)
    splits = create_dataset(dataset, data_dir=data_dir, val_fraction=cfg.expert.val_fraction)
    prep = Preprocessor.fit(splits.train.x, splits.mean, splits.std, zca=cfg.expert.zca)
    dev = torch.device(device)
    train_x = prep.transform(splits.train.x).to(dev)
    ctx = SelectionContext(
        train_x, splits.train.y.to(dev), splits.num_classes, 0 if full else int(ipc or 0), cfg, seed, dev
    )
    idx, settings = selector(ctx)
    idx = idx.cpu()
    config = {
        "selector": name,
        "preset": preset,
        "split": "train",
        "val_fraction": cfg.expert.val_fraction,
        "zca": cfg.expert.zca,
        "lr": cfg.lr_init,
        "dsa": cfg.dsa,
        "eval_epochs": cfg.eval_epochs,
        **settings,
    }
    extra: dict[str, Any] = {} if full else {"train_indices": idx.tolist()}
    meta = make_meta(
        dataset=dataset,
        class_names=splits.class_names,
        ipc=FULL_IPC if full else int(ipc or 0),
        image_shape=splits.image_shape,
        mean=splits.mean,
        std=splits.std,
        method=name,
        config=config,
        seed=seed,
        wall_time_s=round(time.perf_counter() - start, 3),
        arch=cfg.expert.arch,
        arch_kwargs=dict(cfg.expert.arch_kwargs),
        **extra,
    )
    return SyntheticSet(
        train_x.cpu()[idx].contiguous(),
        splits.train.y[idx].contiguous(),
        float(cfg.lr_init),
        meta,
        prep.tensors(),
    )
