"""Datasets held in memory as [0,1] float tensors, their preprocessing (normalise + ZCA) and DSA augmentation.

Importing this package registers every loader; heavy libraries (torchvision, mlxtend, PIL) load lazily.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from satm_cl.data import (  # noqa: F401  (imported to register the loaders)
    cifar,
    digits,
    fashion_mnist,
    imagenet_subsets,
    mnist,
    mnist5k,
    svhn,
    tinyimagenet,
)
from satm_cl.data._torchvision import DOWNLOADABLE
from satm_cl.data.base import DATASETS, STATUS, DatasetOptions, DatasetSplits, Split
from satm_cl.data.dsa import DSA, AugParams
from satm_cl.data.preprocess import Preprocessor
from satm_cl.errors import SatmError

__all__ = [
    "DOWNLOADABLE",
    "DSA",
    "AugParams",
    "DatasetOptions",
    "DatasetSplits",
    "Preprocessor",
    "Split",
    "check_data_dir",
    "create_dataset",
    "dataset_status",
    "list_datasets",
]

_EXTRA_OPTIONS = tuple(
    f.name for f in fields(DatasetOptions) if f.name not in {"data_dir", "download", "seed"}
)


def _options(data_dir: str | Path | None, download: bool, seed: int, kw: dict[str, Any]) -> DatasetOptions:
    unknown = sorted(set(kw) - set(_EXTRA_OPTIONS))
    if unknown:
        raise SatmError(f"unknown dataset option {unknown[0]!r}; valid: {', '.join(_EXTRA_OPTIONS)}")
    path = None if data_dir is None else Path(data_dir).expanduser()
    if path is not None and not download:  # a download may create it
        check_data_dir(path)
    return DatasetOptions(data_dir=path, download=download, seed=seed, **kw)


def check_data_dir(data_dir: str | Path | None) -> None:
    """An explicit data directory must exist: honoured or refused, never passed over for another place."""
    if data_dir is None:
        return
    path = Path(data_dir).expanduser()
    if not path.exists():
        raise SatmError(f"--data-dir {path} does not exist")
    if not path.is_dir():
        raise SatmError(f"--data-dir {path} is not a directory")


def create_dataset(
    name: str, data_dir: str | Path | None = None, download: bool = False, seed: int = 0, **kw: Any
) -> DatasetSplits:
    """Load dataset `name` as train/val/test [0,1] tensors; `kw` may set val_fraction or resolution."""
    loader = DATASETS.get(name)
    return loader(_options(data_dir, download, seed, kw))


def list_datasets() -> list[str]:
    """Names of every registered dataset, sorted."""
    return DATASETS.names()


def dataset_status(name: str, data_dir: str | Path | None = None) -> str:
    """Whether `name` can load: "ready", "needs --data-dir (how to get it)" or "needs extra mnist (...)"."""
    DATASETS.get(name)
    return STATUS[name](_options(data_dir, False, 0, {}))
