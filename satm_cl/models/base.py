"""Shared pieces of the model zoo: the registry, option validation and shape-aware layer helpers."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from satm_cl.errors import SatmError
from satm_cl.registry import Registry

# (in_channels, num_classes, (H, W), **keyword-only options) -> classifier for [N, C, H, W] inputs.
ModelFactory = Callable[..., nn.Module]


MODELS: Registry[ModelFactory] = Registry("model")

NORMS = ("instance", "batch", "layer", "none")


def fmt_size(size: tuple[int, int]) -> str:
    """`HxW` with a multiplication sign, as used in every size-related error message."""
    return f"{size[0]}×{size[1]}"


def check_int(model: str, key: str, value: object, minimum: int = 1) -> int:
    """A validated integer option (bools rejected), so a bad config fails at construction with one line."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SatmError(f"{model}: {key} must be an integer >= {minimum}, got {value!r}")
    return value


def check_choice(model: str, key: str, value: object, choices: Sequence[str]) -> str:
    """A validated string option from a fixed set; the error lists the valid values."""
    if not isinstance(value, str) or value not in choices:
        raise SatmError(f"{model}: {key} must be one of {', '.join(choices)}; got {value!r}")
    return value


def make_norm(kind: str, channels: int, height: int, width: int) -> nn.Module:
    """A normalisation layer for a [C, H, W] map; "instance" is MTT's GroupNorm(C, C) (no running buffers)."""
    if kind == "instance":
        return nn.GroupNorm(channels, channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.LayerNorm([channels, height, width], elementwise_affine=True)
    return nn.Identity()


def halving_kernel(height: int, width: int, min_side: int = 1) -> tuple[int, int] | None:
    """Per-side factor (2 or 1) that halves each side while the result stays >= `min_side`; None if neither.

    Models skip pooling once the map is 1×1 this way; with instance norm they pass `min_side=2`, because
    normalising a 1×1 map (one value per channel) would replace every feature with the bias.
    """
    kernel = (2 if height // 2 >= min_side else 1, 2 if width // 2 >= min_side else 1)
    return None if kernel == (1, 1) else kernel


def min_normed_side(norm: str) -> int:
    """Smallest map side a norm layer may see: 2 for instance norm (see `halving_kernel`), else 1."""
    return 2 if norm == "instance" else 1


@torch.no_grad()
def dry_run_features(features: nn.Module, in_channels: int, size: tuple[int, int]) -> int:
    """Flattened feature count of `features` on zero images, measured in eval mode so BN stats stay put."""
    was_training = features.training
    features.eval()
    try:
        out = features(torch.zeros(2, in_channels, *size))
    finally:
        features.train(was_training)
    return int(out[0].numel())
