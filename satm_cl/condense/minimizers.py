"""Sharpness-aware outer minimisers: each maps (X, ∂L/∂X) to an ascent perturbation ε.

The outer update takes the hypergradient at X + ε and applies it at X (SAM's two-pass scheme).
`none` returns no perturbation, which turns SATM's outer step into MTT's plain step. Adding
another minimiser is one class with `perturb`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from satm_cl.registry import Registry


class Minimizer:
    """Base class: `perturb` returns ε, or None when there is no sharpness-aware pass."""

    def __init__(self, rho: float) -> None:
        self.rho = rho

    def perturb(self, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor | None:
        raise NotImplementedError


MINIMIZERS: Registry[Callable[[float], Minimizer]] = Registry("minimizer")


@MINIMIZERS.register("none")
class NoSharpness(Minimizer):
    """Plain gradient step (MTT)."""

    def perturb(self, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor | None:
        return None


@MINIMIZERS.register("sam")
class SAM(Minimizer):
    """SAM (Foret et al. 2021): ε = ρ g / ||g||."""

    def perturb(self, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor | None:
        return self.rho * grad / grad.norm().clamp_min(1e-12)


@MINIMIZERS.register("asam")
class ASAM(Minimizer):
    """Adaptive SAM (Kwon et al. 2021): ε = ρ T² g / ||T g|| with T = |X| + η, scale-invariant."""

    eta = 0.01

    def perturb(self, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor | None:
        t = x.detach().abs() + self.eta
        return self.rho * t * t * grad / (t * grad).norm().clamp_min(1e-12)


def create_minimizer(name: str, rho: float) -> Minimizer:
    """Look up a minimiser by name (SatmError listing valid names on a miss)."""
    return MINIMIZERS.get(name)(rho)
