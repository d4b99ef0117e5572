"""Tiny datasets written in the real on-disk formats, so tests never need optional data installed."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

FASHION_STEMS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def idx_bytes(array: np.ndarray) -> bytes:
    """An uint8 array in idx format (MNIST's): magic 0,0,0x08,ndim then big-endian dims."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_fashion_mnist(folder: Path, n_train: int = 100, n_test: int = 20, seed: int = 0) -> Path:
    """Four gzipped idx files of random 28x28 images (labels cycling over 10 classes) in `folder`."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = []
    for n in (n_train, n_test):
        arrays += [
            rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8),
            (np.arange(n) % 10).astype(np.uint8),
        ]
    for stem, arr in zip(FASHION_STEMS, arrays, strict=True):
        (folder / f"{stem}.gz").write_bytes(gzip.compress(idx_bytes(arr)))
    return folder
