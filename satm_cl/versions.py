"""Package versions recorded in every artifact, so a result says what produced it."""

from __future__ import annotations

import contextlib
from importlib import metadata

import torch

import satm_cl


def package_versions() -> dict[str, str]:
    """satm-cl, torch and torchvision versions (others are not part of any computation we save)."""
    out = {"satm_cl": satm_cl.__version__, "torch": torch.__version__}
    with contextlib.suppress(metadata.PackageNotFoundError):
        out["torchvision"] = metadata.version("torchvision")
    return out
