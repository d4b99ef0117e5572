"""The inner unroll and its hypergradient: full, truncated (TUH) and with trajectory reuse (TR).

Inner loop (MTT): θ_{i+1} = θ_i − α ∇_θ CE(f(θ_i, A_i(X[b_i])), y[b_i]) for i < N, from an expert's
θ_0 = θ*_t; matching loss L = ||θ_N − θ*_{t+M}||² / ||θ_0 − θ*_{t+M}||².

Truncation: the first N − K steps run without an autograd graph (their iterates treated as
constants), the last K steps keep the graph, so memory grows with K, not N; K = N is the exact
hypergradient. The untracked prefix (θ_{N−K} and the sum of its inner gradients) is returned so a
second pass at a perturbed X can reuse it (TR) and recompute only the tail.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from satm_cl.data.dsa import DSA, AugParams
from satm_cl.models import ParamLayout, functional_forward
from satm_cl.training import autocast


@dataclass(frozen=True)
class InnerPlan:
    """Everything random about one unroll, drawn once so every pass of an outer step sees the same
    mini-batches and augmentations (needed for TR, and for SATM with ρ = 0 to equal MTT)."""

    batches: tuple[torch.Tensor, ...]
    augs: tuple[AugParams | None, ...]

    @property
    def steps(self) -> int:
        return len(self.batches)


def sample_plan(
    n_syn: int,
    image_shape: tuple[int, int, int],
    steps: int,
    batch_size: int | None,
    dsa: DSA,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
) -> InnerPlan:
    """Mini-batches are the chunks of successive random permutations of the synthetic set (as MTT:
    the last chunk of a permutation may be smaller), one DSA draw each; drawn on the CPU generator
    and moved to `device` once, so the inner loop does no host-to-device copies."""
    bs = n_syn if batch_size is None else min(batch_size, n_syn)
    batches: list[torch.Tensor] = []
    chunks: list[torch.Tensor] = []
    while len(batches) < steps:
        if not chunks:
            chunks = list(torch.randperm(n_syn, generator=generator).split(bs))
        batches.append(chunks.pop(0))
    augs = tuple(None if dsa.is_identity else dsa.sample(b.numel(), image_shape, generator) for b in batches)
    return InnerPlan(
        tuple(b.to(device) for b in batches), tuple(None if a is None else a.to(device) for a in augs)
    )


@dataclass(frozen=True)
class Prefix:
    """The untracked head of an unroll: θ after N − K steps, and the sum of its inner gradients."""

    theta: torch.Tensor
    grad_sum: torch.Tensor
    steps: int


@dataclass(frozen=True)
class HyperResult:
    """Matching loss and its gradients w.r.t. the images and the inner learning rate."""

    loss: torch.Tensor
    grad_x: torch.Tensor
    grad_lr: torch.Tensor
    prefix: Prefix


class Unroller:
    """Computes matching-loss hypergradients for one architecture with torch.func."""

    def __init__(self, model: nn.Module, layout: ParamLayout, dsa: DSA, precision: str = "fp32") -> None:
        self.model = model
        self.layout = layout
        self.dsa = dsa
        self.precision = precision  # forward arithmetic of the inner steps (`satm_cl.training.PRECISIONS`)

    def _inner_loss(
        self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, plan: InnerPlan, i: int
    ) -> torch.Tensor:
        idx = plan.batches[i]
        xb = x[idx]
        aug = plan.augs[i]
        if aug is not None:
            xb = self.dsa.apply(xb, aug)
        with autocast(xb.device, self.precision):
            logits = functional_forward(self.model, self.layout, theta, xb)
        return F.cross_entropy(logits.to(xb.dtype), y[idx])  # the loss in the input's precision

    def prefix(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        lr: torch.Tensor,
        theta0: torch.Tensor,
        plan: InnerPlan,
        upto: int,
    ) -> Prefix:
        """Run inner steps [0, upto) without a graph on X and α (first-order only)."""
        theta = theta0.detach()
        grad_sum = torch.zeros_like(theta)
        xd, lrd = x.detach(), lr.detach()
        for i in range(upto):
            t = theta.requires_grad_(True)
            (g,) = torch.autograd.grad(self._inner_loss(t, xd, y, plan, i), t)
            grad_sum += g
            theta = (t - lrd * g).detach()
        return Prefix(theta, grad_sum, upto)

    def hypergradient(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        lr: torch.Tensor,
        theta0: torch.Tensor,
        target: torch.Tensor,
        plan: InnerPlan,
        keep: int | None = None,
        lr_grad: str = "closed_form",
        prefix: Prefix | None = None,
    ) -> HyperResult:
        """∂L/∂X and ∂L/∂α, backpropagating through the last `keep` inner steps (None: all).

        `lr_grad="closed_form"` uses ∂L/∂α ≈ −(∂L/∂θ_N)·Σ_i g_i (no second-order backprop for α);
        `"autograd"` differentiates α through the kept steps like X. A given `prefix` (TR) must
        cover exactly N − keep steps and is reused instead of recomputing the head.
        """
        n = plan.steps
        k = n if keep is None else max(1, min(keep, n))
        if prefix is None:
            prefix = self.prefix(x, y, lr, theta0, plan, n - k)
        elif prefix.steps != n - k:
            raise ValueError(f"reused prefix covers {prefix.steps} steps, truncation needs {n - k}")
        xg = x.detach().requires_grad_(True)
        lr_auto = lr_grad == "autograd"
        lrg = lr.detach().requires_grad_(lr_auto)
        theta = prefix.theta.detach().requires_grad_(True)
        if lr_auto and prefix.steps:
            # θ_{N−K} = θ_0 − α Σ g_i to first order: let α's gradient see the untracked head too.
            theta = theta - (lrg - lrg.detach()) * prefix.grad_sum
        tail_sum = torch.zeros_like(theta)
        for i in range(n - k, n):
            (g,) = torch.autograd.grad(self._inner_loss(theta, xg, y, plan, i), theta, create_graph=True)
            tail_sum += g.detach()
            theta = theta - lrg * g
        denom = (theta0 - target).pow(2).sum()
        loss = (theta - target).pow(2).sum() / denom
        wrt = [xg, lrg] if lr_auto else [xg]
        grads = torch.autograd.grad(loss, wrt)
        if lr_auto:
            grad_lr = grads[1]
        else:
            dtheta = 2.0 * (theta.detach() - target) / denom
            grad_lr = -(dtheta * (prefix.grad_sum + tail_sum)).sum()
        return HyperResult(loss.detach(), grads[0], grad_lr.detach(), prefix)
