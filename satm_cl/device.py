"""Resolve `--device auto|cpu|cuda` to a torch.device."""

from __future__ import annotations

import torch

from satm_cl.errors import SatmError


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA when available, else CPU; asking for CUDA without it is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SatmError("--device cuda requested but CUDA is not available; use --device cpu or auto")
    if name != "cpu" and not name.startswith("cuda"):
        raise SatmError(f"unknown device {name!r}; valid: auto, cpu, cuda")
    return torch.device(name)
