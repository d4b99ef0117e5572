"""SyntheticSet: the condensed-data artifact (safetensors + JSON, never pickle).

A directory with `synthetic.safetensors` (`images` float32 [N,C,H,W] in model-input space,
`labels` int64 [N], `lr` float32 scalar, and `zca_mean`/`zca_matrix` when ZCA was used) and
`synthetic.json` (format version, dataset, class names, IPC, image shape, normalisation, zca flag,
method and resolved config, seed, iterations, wall time, package version, SHA-256 of the tensor
file). Real-subset baselines use the same format, so every runner treats all sets alike.
"""

from __future__ import annotations

import json
import math
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

    def __post_init__(self) -> None:
        # the artifact stores lr as float32: hold the same value in memory, so a set and its reloaded copy
        # record the same config.lr (a fresh 0.05 would otherwise read back as 0.05000000074505806)
        object.__setattr__(self, "lr", float(torch.tensor(float(self.lr), dtype=torch.float32)))

    @property
    def num_classes(self) -> int:
        return len(self.meta["class_names"])

    def preprocessor(self) -> Preprocessor:
        """Maps real [0,1] images into this set's model-input space (normalisation + ZCA)."""
        try:
            return Preprocessor.from_state(self.meta["mean"], self.meta["std"], self.zca_state)
        except RuntimeError:  # torch.linalg.inv on a singular ZCA matrix
            raise SatmError(f"{self.meta['dataset']} set: its ZCA matrix is not invertible") from None

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


SHOWN_META = ("dataset", "method", "ipc", "image_shape", "zca", "iterations", "seed", "selection", "health")
NOT_APPLICABLE = "n/a"
FULL_DATA = "full data"


def shown_meta(meta: dict[str, Any], words: bool = True) -> dict[str, Any]:
    """The metadata `satm-cl show` prints, its sentinels (the file keeps them) in words, or as null for
    `show --json` (`words=False`) so every field keeps one type: `ipc` -1 (the whole train split) as "full
    data", as the reporter says; a selection's `iteration` or `val_accuracy` of -1 (no validation ran, the
    last images were kept) or null (a starting set, nothing condensed) as "n/a"."""
    shown = {k: meta[k] for k in SHOWN_META if k in meta}
    if shown.get("ipc") == -1:
        shown["ipc"] = FULL_DATA if words else None
    if isinstance(shown.get("selection"), dict):
        missing = NOT_APPLICABLE if words else None
        shown["selection"] = {
            k: missing if k in ("iteration", "val_accuracy") and (v is None or v == -1) else v
            for k, v in shown["selection"].items()
        }
    return shown


def shown_lines(shown: dict[str, Any]) -> list[str]:
    """`key: value` lines of `shown_meta(..., words=True)` for a reader (a dict value on one line)."""
    def text(v: Any) -> str:
        if isinstance(v, dict):
            return "; ".join(f"{k} = {text(x)}" for k, x in v.items())
        if isinstance(v, float):
            return f"{v:.4g}"
        return "yes" if v is True else "no" if v is False else str(v)

    return [f"{k}: {text(v)}" for k, v in shown.items()]


def load_synthetic(path: str | Path) -> SyntheticSet:
    """Load and verify an artifact; any missing, corrupted or mismatched part is a one-line SatmError."""
    path = Path(path)
    meta_file, tensor_file = path / META_FILE, path / TENSOR_FILE
    if not path.exists():
        raise SatmError(f"{path} does not exist (not a synthetic set: check the path)")
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
            f"{meta_file}: format version {meta['format_version']!r} unsupported (want {FORMAT_VERSION})"
        )
    _check_meta(meta, meta_file)
    if sha256_file(tensor_file) != meta["sha256"]:
        raise SatmError(f"{tensor_file} does not match the SHA-256 in {META_FILE} (corrupted or edited)")
    try:
        tensors = load_file(str(tensor_file))
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SatmError(f"unreadable tensor file {tensor_file}: {first}") from None
    images, labels, lr, zca = _check_tensors(tensors, meta, tensor_file)
    _check_counts(labels, meta, path)
    if bool(meta["zca"]) != bool(zca):
        state = "present" if zca else "absent"
        raise SatmError(f"{path}: metadata says zca={meta['zca']} but the ZCA tensors are {state}")
    return SyntheticSet(images, labels, lr, meta, zca)


def _check_counts(labels: torch.Tensor, meta: dict[str, Any], path: Path) -> None:
    """Every class a set holds has `ipc` images (the metadata is checksummed only through the tensors' SHA, so
    an edited `ipc` would otherwise label records with a size the images do not have)."""
    if meta["ipc"] == -1:  # the full train split: per-class counts follow the data
        return
    counts = torch.bincount(labels)
    held = counts[counts > 0]
    if bool((held != meta["ipc"]).any()):
        found = sorted({int(c) for c in held})
        raise SatmError(f"{path}: metadata says ipc {meta['ipc']} but the images hold "
                        f"{'/'.join(map(str, found))} per class (edited or mismatched metadata)")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return (isinstance(v, int | float) and not isinstance(v, bool)) and math.isfinite(v)


def _check_meta(meta: dict[str, Any], meta_file: Path) -> None:
    """Types and ranges of the metadata fields consumers use; a bad one is a SatmError naming it."""
    shape = meta["image_shape"]
    shape_ok = isinstance(shape, list) and len(shape) == 3 and all(_is_int(d) and d >= 1 for d in shape)
    channels = shape[0] if shape_ok else 0
    names = meta["class_names"]
    checks = {
        "dataset": isinstance(meta["dataset"], str) and bool(meta["dataset"]),
        "class_names": isinstance(names, list) and bool(names) and all(isinstance(c, str) for c in names),
        "ipc": _is_int(meta["ipc"]) and (meta["ipc"] >= 1 or meta["ipc"] == -1),  # -1: the full train split
        "image_shape": shape_ok,
        "mean": isinstance(meta["mean"], list)
        and len(meta["mean"]) == channels
        and all(map(_is_num, meta["mean"])),
        "std": isinstance(meta["std"], list)
        and len(meta["std"]) == channels
        and all(_is_num(v) and v > 0 for v in meta["std"]),
        "zca": isinstance(meta["zca"], bool),
        "method": isinstance(meta["method"], str) and bool(meta["method"]),
        "config": isinstance(meta["config"], dict),
        "seed": _is_int(meta["seed"]),
        "iterations": _is_int(meta["iterations"]) and meta["iterations"] >= 0,
        "sha256": isinstance(meta["sha256"], str),
        # optional fields consumers read when present
        "arch": isinstance(meta.get("arch", ""), str),
        "arch_kwargs": isinstance(meta.get("arch_kwargs") or {}, dict),
        "config.dsa": not isinstance(meta["config"], dict) or isinstance(meta["config"].get("dsa", ""), str),
        "config.eval_epochs": not isinstance(meta["config"], dict)
        or (_is_int(meta["config"].get("eval_epochs", 1)) and meta["config"].get("eval_epochs", 1) >= 1),
    }
    bad = [k for k, ok in checks.items() if not ok]
    if bad:
        raise SatmError(f"{meta_file}: invalid {', '.join(bad)}")


def _check_tensors(
    tensors: dict[str, torch.Tensor], meta: dict[str, Any], tensor_file: Path
) -> tuple[torch.Tensor, torch.Tensor, float, dict[str, torch.Tensor]]:
    """Presence, dtype, shape and finiteness of the tensors: garbage is refused, never measured."""
    for key in ("images", "labels", "lr"):
        if key not in tensors:
            raise SatmError(f"{tensor_file} lacks tensor {key!r}")
    images, labels, lr_t = tensors["images"], tensors["labels"], tensors["lr"]
    if images.dtype != torch.float32 or labels.dtype != torch.int64 or lr_t.dtype != torch.float32:
        raise SatmError(f"{tensor_file}: images/labels/lr must be float32/int64/float32")
    if images.dim() != 4 or labels.dim() != 1 or lr_t.numel() != 1:
        raise SatmError(f"{tensor_file}: images must be [N,C,H,W], labels [N], lr a scalar")
    if list(images.shape[1:]) != list(meta["image_shape"]) or images.shape[0] != labels.shape[0]:
        raise SatmError(
            f"{tensor_file}: images {tuple(images.shape)} do not match image_shape/labels in metadata"
        )
    if images.shape[0] == 0:
        raise SatmError(f"{tensor_file} holds no images")
    if int(labels.min()) < 0 or int(labels.max()) >= len(meta["class_names"]):
        raise SatmError(f"{tensor_file}: labels outside the {len(meta['class_names'])} classes")
    if not bool(torch.isfinite(images).all()):
        raise SatmError(f"{tensor_file}: images hold NaN or infinite values; refusing to use them")
    lr = float(lr_t.reshape(()))
    if not math.isfinite(lr) or lr <= 0:
        raise SatmError(f"{tensor_file}: learned lr {lr} is not a positive finite number")
    zca: dict[str, torch.Tensor] = {k: tensors[k] for k in ("zca_mean", "zca_matrix") if k in tensors}
    if zca:
        d = math.prod(int(v) for v in meta["image_shape"])
        matrix, mean = zca.get("zca_matrix"), zca.get("zca_mean")
        if (
            matrix is None
            or mean is None
            or tuple(matrix.shape) != (d, d)
            or mean.numel() != d
            or not matrix.is_floating_point()
            or not mean.is_floating_point()
            or not bool(torch.isfinite(matrix).all() and torch.isfinite(mean).all())
        ):
            raise SatmError(
                f"{tensor_file}: ZCA tensors need a finite [{d},{d}] zca_matrix and a [{d}] zca_mean"
            )
    return images, labels, lr, zca
