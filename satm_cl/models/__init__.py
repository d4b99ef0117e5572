"""The model zoo: `create_model(name, ...)` builds any registered classifier, optionally from a fixed seed."""

from __future__ import annotations

import inspect

import torch
from torch import nn

from satm_cl.errors import SatmError
from satm_cl.models import alexnet, convnet, lenet, mlp, resnet, vgg  # noqa: F401  (register the models)
from satm_cl.models.base import MODELS, ModelFactory, check_int
from satm_cl.models.functional import ParamLayout, functional_forward

__all__ = ["MODELS", "ParamLayout", "create_model", "functional_forward", "list_models", "model_options"]


def list_models() -> list[str]:
    """Names accepted by `create_model`, sorted."""
    return MODELS.names()


def _options(factory: ModelFactory) -> dict[str, object]:
    return {
        p.name: p.default
        for p in inspect.signature(factory).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def model_options(name: str) -> dict[str, object]:
    """The keyword options a model accepts, with their defaults (for help text and run records)."""
    return _options(MODELS.get(name))


def _image_size(image_size: int | tuple[int, int]) -> tuple[int, int]:
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(size) != 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in size):
        raise SatmError(f"image_size must be a positive int or (height, width), got {image_size!r}")
    return int(size[0]), int(size[1])


def create_model(
    name: str,
    in_channels: int,
    num_classes: int,
    image_size: int | tuple[int, int],
    seed: int | None = None,
    **kw: object,
) -> nn.Module:
    """Build model `name` for [N, in_channels, H, W] inputs; with `seed`, init is reproducible and the
    caller's global torch RNG is left untouched."""
    factory = MODELS.get(name)
    check_int(name, "in_channels", in_channels)
    check_int(name, "num_classes", num_classes)
    size = _image_size(image_size)
    allowed = _options(factory)
    unknown = sorted(set(kw) - set(allowed))
    if unknown:
        valid = ", ".join(allowed) if allowed else "(none)"
        raise SatmError(f"unknown option(s) {', '.join(unknown)} for model {name!r}; valid: {valid}")
    if seed is None:
        return factory(in_channels, num_classes, size, **kw)
    check_int(name, "seed", seed, minimum=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory(in_channels, num_classes, size, **kw)
