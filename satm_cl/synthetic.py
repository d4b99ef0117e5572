"""SyntheticSet: the condensed-data artifact (safetensors + JSON, never pickle).

A directory with `synthetic.safetensors` (`images` float32 [N,C,H,W] in model-input space,
`labels` int64 [N], `lr` float32 scalar, and `zca_mean`/`zca_matrix` when ZCA was used) and
`synthetic.json` (format version, dataset, class names, IPC, image shape, normalisation, zca flag,
method and resolved config, seed, iterations, wall time, package version, SHA-256 of the tensor
file). Real-subset baselines use the same format, so every runner treats all sets alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch.utils.data import TensorDataset

import satm_cl
from satm_cl.data.preprocess import Preprocessor
from satm_cl.errors import SatmError
from satm_cl.io import sha256_file, write_json, write_tensors

FORMAT_VERSION = 1
TENSOR_FILE = "synthetic.safetensors"
META_FILE = "synthetic.json"
REQUIRED_META = (
    "format_version",
    "dataset",
    "class_names",
    "ipc",
    "image_shape",
    "mean",
    "std",
    "zca",
    "method",
    "config",
    "seed",
    "iterations",
    "sha256",
)


@dataclass(frozen=True)
class SyntheticSet:
    """Images (model-input space), labels, learned inner LR and the metadata that makes them usable."""

    images: torch.Tensor
    labels: torch.Tensor
    lr: float
    meta: dict[str, Any]
    zca_state: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.meta["class_names"])

    def preprocessor(self) -> Preprocessor:
        """Maps real [0,1] images into this set's model-input space (normalisation + ZCA)."""
        return Preprocessor.from_state(self.meta["mean"], self.meta["std"], self.zca_state)

    def pixels(self) -> torch.Tensor:
        """The images back in [0,1] pixel space (ZCA inverted, de-normalised, clamped) for display."""
        return self.preprocessor().inverse(self.images).clamp(0, 1)

    def as_dataset(self) -> TensorDataset:
        """A torch Dataset of (image, label) pairs in model-input space."""
        return TensorDataset(self.images, self.labels)

    def save(self, out: Path) -> Path:
        """Write both files atomically; the JSON records the tensor file's SHA-256."""
        out = Path(out)
        tensors = {
            "images": self.images.float(),
            "labels": self.labels.long(),
            "lr": torch.tensor(self.lr, dtype=torch.float32),
            **self.zca_state,
        }
        write_tensors(out / TENSOR_FILE, tensors)
        meta = {
            **self.meta,
            "format_version": FORMAT_VERSION,
            "zca": bool(self.zca_state),
            "package_version": satm_cl.__version__,
            "sha256": sha256_file(out / TENSOR_FILE),
        }
        write_json(out / META_FILE, meta)
        return out


def make_meta(
    *,
    dataset: str,
    class_names: list[str] | tuple[str, ...],
    ipc: int,
    image_shape: tuple[int, int, int],
    mean: tuple[float, ...],
    std: tuple[float, ...],
    method: str,
    config: dict[str, Any],
    seed: int,
    iterations: int = 0,
    wall_time_s: float = 0.0,
    **extra: Any,
) -> dict[str, Any]:
    """The metadata dict every producer (condense, baselines) fills the same way."""
    return {
        "dataset": dataset,
        "class_names": list(class_names),
        "ipc": ipc,
        "image_shape": list(image_shape),
        "mean": list(mean),
        "std": list(std),
        "method": method,
        "config": config,
        "seed": seed,
        "iterations": iterations,
        "wall_time_s": wall_time_s,
        **extra,
    }


def load_synthetic(path: str | Path) -> SyntheticSet:
    """Load and verify an artifact; any missing, corrupted or mismatched part is a one-line SatmError."""
    path = Path(path)
    meta_file, tensor_file = path / META_FILE, path / TENSOR_FILE
    if not meta_file.is_file() or not tensor_file.is_file():
        raise SatmError(f"{path} is not a synthetic set (needs {META_FILE} and {TENSOR_FILE})")
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        raise SatmError(f"unreadable metadata {meta_file}") from None
    missing = [k for k in REQUIRED_META if not isinstance(meta, dict) or k not in meta]
    if missing:
        raise SatmError(f"{meta_file} lacks {', '.join(missing)}")
    if meta["format_version"] != FORMAT_VERSION:
        raise SatmError(
            f"{meta_file}: format version {meta['format_version']} unsupported (want {FORMAT_VERSION})"
        )
    if sha256_file(tensor_file) != meta["sha256"]:
        raise SatmError(f"{tensor_file} does not match the SHA-256 in {META_FILE} (corrupted or edited)")
    try:
        tensors = load_file(str(tensor_file))
    except (SafetensorError, OSError) as exc:
        raise SatmError(f"unreadable tensor file {tensor_file}: {str(exc).splitlines()[0]}") from None
    for key in ("images", "labels", "lr"):
        if key not in tensors:
            raise SatmError(f"{tensor_file} lacks tensor {key!r}")
    images, labels = tensors["images"], tensors["labels"]
    if list(images.shape[1:]) != list(meta["image_shape"]) or images.shape[0] != labels.shape[0]:
        raise SatmError(
            f"{tensor_file}: images {tuple(images.shape)} do not match image_shape/labels in metadata"
        )
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= len(meta["class_names"])):
        raise SatmError(f"{tensor_file}: labels outside the {len(meta['class_names'])} classes")
    zca: dict[str, torch.Tensor] = {k: tensors[k] for k in ("zca_mean", "zca_matrix") if k in tensors}
    if bool(meta["zca"]) != bool(zca):
        state = "present" if zca else "absent"
        raise SatmError(f"{path}: metadata says zca={meta['zca']} but the ZCA tensors are {state}")
    return SyntheticSet(images, labels, float(tensors["lr"]), meta, zca)
