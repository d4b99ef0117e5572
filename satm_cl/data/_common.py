"""Helpers shared by the loaders: uint8/float arrays to [0,1] tensors, the stratified val carve, idx files."""

from __future__ import annotations

import gzip
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from satm_cl.data.base import DatasetOptions, DatasetSplits, Split
from satm_cl.errors import SatmError

_STAT_CHUNK = 4096


def to_unit_images(array: np.ndarray | torch.Tensor, scale: float, layout: str = "NCHW") -> torch.Tensor:
    """Convert a whole pixel array to float32 [N,C,H,W] in [0,1] in one vectorised step.

    `layout` names the input axes: "NCHW", "NHWC" or "NHW" (grayscale without a channel axis).
    """
    t = (
        torch.as_tensor(np.require(array, requirements=["C", "W"]))
        if isinstance(array, np.ndarray)
        else array
    )
    if layout == "NHW":
        t = t.unsqueeze(1)
    elif layout == "NHWC":
        t = t.permute(0, 3, 1, 2)
    elif layout != "NCHW":
        raise ValueError(f"unknown layout {layout!r}")
    return (t.to(torch.float32) / scale).clamp_(0.0, 1.0).contiguous()


def to_labels(values: np.ndarray | torch.Tensor | Sequence[int]) -> torch.Tensor:
    """Labels as a contiguous int64 tensor [N]."""
    return torch.from_numpy(np.array(values, dtype=np.int64).reshape(-1))


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of x [N,C,H,W], accumulated in float64 over row chunks."""
    c = x.shape[1]
    total = torch.zeros(c, dtype=torch.float64)
    total_sq = torch.zeros(c, dtype=torch.float64)
    for start in range(0, x.shape[0], _STAT_CHUNK):
        chunk = x[start : start + _STAT_CHUNK].to(torch.float64)
        total += chunk.sum(dim=(0, 2, 3))
        total_sq += chunk.square().sum(dim=(0, 2, 3))
    count = x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / count
    std = (total_sq / count - mean.square()).clamp_min(0.0).sqrt().clamp_min(1e-8)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def carve_val(x: torch.Tensor, y: torch.Tensor, fraction: float, seed: int, name: str) -> tuple[Split, Split]:
    """Split a train set into (train, val): `fraction` of it, stratified, sklearn random_state = seed."""
    from sklearn.model_selection import train_test_split

    if not 0.0 < fraction < 1.0:
        raise SatmError(f"val_fraction must be in (0, 1), got {fraction}")
    idx = np.arange(int(y.shape[0]))
    try:
        train_idx, val_idx = train_test_split(idx, test_size=fraction, random_state=seed, stratify=y.numpy())
    except ValueError as exc:
        raise SatmError(
            f"dataset {name} is too small for a stratified val split of {fraction:g}: {exc}".replace(
                "\n", " "
            )
        ) from None
    tr = torch.from_numpy(np.asarray(train_idx, dtype=np.int64))
    va = torch.from_numpy(np.asarray(val_idx, dtype=np.int64))
    return Split(x[tr].contiguous(), y[tr].contiguous()), Split(x[va].contiguous(), y[va].contiguous())


def finish(
    name: str,
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    class_names: Sequence[str],
    options: DatasetOptions,
) -> DatasetSplits:
    """Carve val out of train, compute the train statistics and assemble the DatasetSplits."""
    for split, x, y in (("train", train_x, train_y), ("test", test_x, test_y)):
        if x.shape[0] != y.shape[0]:
            raise SatmError(
                f"dataset {name}: the {split} split has {x.shape[0]} images but {y.shape[0]} labels"
            )
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= len(class_names)):
            raise SatmError(f"dataset {name}: {split} labels outside 0..{len(class_names) - 1}")
    train, val = carve_val(train_x, train_y, options.val_fraction, options.seed, name)
    mean, std = channel_stats(train.x)
    return DatasetSplits(
        name=name,
        train=train,
        val=val,
        test=Split(test_x.contiguous(), test_y.contiguous()),
        class_names=tuple(str(c) for c in class_names),
        mean=mean,
        std=std,
    )


def read_idx(path: Path) -> np.ndarray:
    """Parse an idx file (MNIST format, optionally gzipped) into a numpy array of its declared shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise SatmError(f"{path} is not an idx file (bad magic number)")
    dtypes: dict[int, str] = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in dtypes:
        raise SatmError(f"{path} is not an idx file (unknown type code {raw[2]:#x})")
    ndim = raw[3]
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    data: np.ndarray = np.frombuffer(raw, dtype=np.dtype(dtypes[raw[2]]), offset=4 + 4 * ndim)
    if data.size != math.prod(dims):
        raise SatmError(f"{path} is truncated: expected {math.prod(dims)} values, found {data.size}")
    return data.reshape(dims)


def require_data_dir(name: str, options: DatasetOptions, hint: str) -> Path:
    """The user's data dir, or a SatmError saying the dataset needs one and how to get it."""
    if options.data_dir is None:
        raise SatmError(f"dataset {name} needs a data directory; pass --data-dir DIR ({hint})")
    return Path(options.data_dir).expanduser()


def not_found(
    name: str, where: Path | str, hint: str = "or fetch it with `satm-cl download` on a machine with internet"
) -> SatmError:
    """The one-line error for a dataset whose files are missing."""
    return SatmError(f"dataset {name} not found under {where}; pass --data-dir DIR ({hint})")
