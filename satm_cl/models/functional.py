"""Flat-vector views of a model's parameters, for trajectory matching's unrolled (bilevel) student updates."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from satm_cl.errors import SatmError


@dataclass(frozen=True)
class ParamLayout:
    """Names and shapes of a module's parameters in `named_parameters()` order: maps flat vector ↔ tensors."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    numels: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        if len(self.names) != len(self.shapes):
            raise SatmError(f"parameter layout has {len(self.names)} names but {len(self.shapes)} shapes")
        object.__setattr__(self, "numels", tuple(math.prod(s) for s in self.shapes))

    @classmethod
    def from_module(cls, model: nn.Module) -> ParamLayout:
        """The layout of `model`'s trainable and frozen parameters alike."""
        named = list(model.named_parameters())
        return cls(tuple(n for n, _ in named), tuple(tuple(p.shape) for _, p in named))

    @property
    def numel(self) -> int:
        """Length of the flat vector."""
        return sum(self.numels)

    def _params(self, model: nn.Module) -> list[nn.Parameter]:
        named = list(model.named_parameters())
        names = tuple(n for n, _ in named)
        shapes = tuple(tuple(p.shape) for _, p in named)
        if names != self.names or shapes != self.shapes:
            raise SatmError(
                f"model parameters do not match the layout ({len(names)} tensors / "
                f"{sum(p.numel() for _, p in named)} values vs {len(self.names)} / {self.numel})"
            )
        return [p for _, p in named]

    def flatten(self, model: nn.Module) -> torch.Tensor:
        """A detached 1-D float32 copy of all of `model`'s parameters."""
        params = self._params(model)
        return torch.cat([p.detach().reshape(-1).to(torch.float32) for p in params])

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Name → view of `flat` with the parameter's shape; no copies, so gradients reach `flat`."""
        if flat.dim() != 1 or flat.numel() != self.numel:
            raise SatmError(
                f"flat parameter vector must be 1-D of length {self.numel}, got {tuple(flat.shape)}"
            )
        chunks = torch.split(flat, list(self.numels))
        return {n: c.view(s) for n, c, s in zip(self.names, chunks, self.shapes, strict=True)}

    @torch.no_grad()
    def load_into(self, model: nn.Module, flat: torch.Tensor) -> None:
        """Copy the values of `flat` into `model`'s parameters in place (no autograd history)."""
        views = self.unflatten(flat.detach())
        for param, name in zip(self._params(model), self.names, strict=True):
            param.copy_(views[name])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description, saved next to flat parameter trajectories."""
        return {"names": list(self.names), "shapes": [list(s) for s in self.shapes]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ParamLayout:
        """Inverse of `to_dict`; a malformed record is a one-line SatmError."""
        try:
            names = tuple(str(n) for n in data["names"])
            shapes = tuple(tuple(int(d) for d in s) for s in data["shapes"])
        except (KeyError, TypeError, ValueError) as exc:
            raise SatmError(f"malformed parameter layout record: {exc!r}") from None
        return cls(names, shapes)


def functional_forward(
    model: nn.Module,
    layout: ParamLayout,
    flat: torch.Tensor,
    x: torch.Tensor,
    buffers: Mapping[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """`model(x)` with parameters taken from `flat` (and optional buffers), differentiable in both."""
    out: torch.Tensor = functional_call(model, {**layout.unflatten(flat), **(buffers or {})}, (x,))
    return out
