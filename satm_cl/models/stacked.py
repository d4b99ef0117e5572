"""R independent ConvNets as one network: grouped convolutions, per-channel norms and a batched linear.

Independent seeded trainings of the same small ConvNet (evaluation runs, condensation's validation
runs) are R small computations; stacking them makes one computation with R times the channels. Each
run keeps its own parameters (channel block r of every layer is run r's), and every op either acts per
channel (GroupNorm(C, C) = instance norm, BatchNorm, ReLU, pooling) or is grouped per run (conv,
linear), so run r's outputs and gradients are exactly those of its own network, up to float summation
order. Only what stacks exactly is accepted: `stack_convnets` returns None for anything else.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from satm_cl.models.convnet import ConvNet
from satm_cl.models.pooling import AvgPool2x2

_PER_CHANNEL = (nn.ReLU, nn.AvgPool2d, AvgPool2x2, nn.MaxPool2d, nn.Identity)


class StackedConvNet(nn.Module):
    """`runs` ConvNets side by side: input [B, R, C, H, W] (run r's batch in slot r), logits [B, R, K]."""

    def __init__(self, features: nn.Sequential, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.features = features
        self.runs = int(weight.shape[0])
        self.weight = nn.Parameter(weight)  # [R, K, F]
        self.bias = nn.Parameter(bias)  # [R, K]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, r = x.shape[0], x.shape[1]
        if r != self.runs:
            raise ValueError(f"StackedConvNet of {self.runs} runs got input for {r}")
        feats = self.features(x.reshape(b, r * x.shape[2], *x.shape[3:])).reshape(b, r, -1)
        return torch.einsum("brf,rkf->brk", feats, self.weight) + self.bias


def _stacked_state(layers: Sequence[nn.Module]) -> dict[str, torch.Tensor]:
    """The layers' states with every per-channel tensor concatenated (run r's block r); scalars kept."""
    states = [m.state_dict() for m in layers]
    return {
        key: torch.cat([st[key] for st in states]) if value.dim() else value.clone()
        for key, value in states[0].items()
    }


def _empty_like_stacked(layer: nn.Module, runs: int) -> nn.Module | None:
    """A fresh layer of `layer`'s kind over `runs` channel blocks, or None if it does not stack exactly."""
    if type(layer) is nn.Conv2d:
        return nn.Conv2d(
            layer.in_channels * runs,
            layer.out_channels * runs,
            layer.kernel_size,  # type: ignore[arg-type]
            stride=layer.stride,  # type: ignore[arg-type]
            padding=layer.padding,  # type: ignore[arg-type]
            dilation=layer.dilation,  # type: ignore[arg-type]
            groups=layer.groups * runs,
            bias=layer.bias is not None,
        )
    if type(layer) is nn.GroupNorm and layer.num_groups == layer.num_channels:  # instance norm only
        channels = layer.num_channels * runs
        return nn.GroupNorm(channels, channels, eps=layer.eps, affine=layer.affine)
    if type(layer) is nn.BatchNorm2d:
        return nn.BatchNorm2d(
            layer.num_features * runs,
            eps=layer.eps,
            momentum=layer.momentum,
            affine=layer.affine,
            track_running_stats=layer.track_running_stats,
        )
    return None


def _stack_layer(layers: Sequence[nn.Module]) -> nn.Module | None:
    """One layer of R networks as a single layer over R channel blocks, or None if it does not stack."""
    first = layers[0]
    if any(type(m) is not type(first) for m in layers):
        return None
    if isinstance(first, _PER_CHANNEL):
        return first
    out = _empty_like_stacked(first, len(layers))
    if out is None:
        return None
    state = _stacked_state(layers)
    out.load_state_dict(state)
    device = next(iter(state.values())).device if state else torch.device("cpu")
    return out.to(device)


def stack_convnets(models: Sequence[nn.Module]) -> StackedConvNet | None:
    """Stack R ConvNets of one shape (each already initialised with its own seed), or None if any part
    (e.g. layer norm, a non-ConvNet) cannot be stacked exactly."""
    if not models or any(type(m) is not ConvNet for m in models):
        return None
    convnets = [m for m in models if isinstance(m, ConvNet)]
    shapes = {tuple((k, tuple(v.shape)) for k, v in m.state_dict().items()) for m in convnets}
    if len(shapes) != 1:
        return None
    layers: list[nn.Module] = []
    for parts in zip(*(m.features for m in convnets), strict=True):
        stacked = _stack_layer(parts)
        if stacked is None:
            return None
        layers.append(stacked)
    with torch.no_grad():
        weight = torch.stack([m.classifier.weight for m in convnets]).clone()
        bias = torch.stack([m.classifier.bias for m in convnets]).clone()
    return StackedConvNet(nn.Sequential(*layers), weight, bias)
