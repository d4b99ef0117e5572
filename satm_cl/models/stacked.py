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

_PER_CHANNEL = (nn.ReLU, nn.AvgPool2d, nn.MaxPool2d, nn.Identity)


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


def _cat(tensors: Sequence[torch.Tensor | None]) -> torch.Tensor | None:
    return None if tensors[0] is None else torch.cat([t.detach() for t in tensors if t is not None])


def _stack_layer(layers: Sequence[nn.Module]) -> nn.Module | None:
    """One layer of R networks as a single layer over R channel blocks, or None if it does not stack."""
    first, runs = layers[0], len(layers)
    if any(type(m) is not type(first) for m in layers):
        return None
    if type(first) is nn.Conv2d:
        conv = first
        out = nn.Conv2d(
            conv.in_channels * runs,
            conv.out_channels * runs,
            conv.kernel_size,
            stride=conv.stride,
            padding=conv.padding,
            dilation=conv.dilation,
            groups=conv.groups * runs,
            bias=conv.bias is not None,
        )
        with torch.no_grad():
            out.weight.copy_(torch.cat([m.weight for m in layers]))  # type: ignore[misc]
            if conv.bias is not None:
                out.bias.copy_(torch.cat([m.bias for m in layers]))  # type: ignore[misc]
        return out.to(conv.weight.device)
    if type(first) is nn.GroupNorm:
        norm = first
        if norm.num_groups != norm.num_channels:  # only instance norm (one group per channel) stacks
            return None
        channels = norm.num_channels * runs
        out_gn = nn.GroupNorm(channels, channels, eps=norm.eps, affine=norm.affine)
        if norm.affine:
            with torch.no_grad():
                out_gn.weight.copy_(_cat([m.weight for m in layers]))  # type: ignore[arg-type]
                out_gn.bias.copy_(_cat([m.bias for m in layers]))  # type: ignore[arg-type]
        return out_gn.to(norm.weight.device if norm.affine else "cpu")
    if type(first) is nn.BatchNorm2d:
        bn = first
        out_bn = nn.BatchNorm2d(
            bn.num_features * runs,
            eps=bn.eps,
            momentum=bn.momentum,
            affine=bn.affine,
            track_running_stats=bn.track_running_stats,
        )
        state = {
            key: (_cat([m.state_dict()[key] for m in layers]) if value.dim() else value.clone())
            for key, value in bn.state_dict().items()
        }
        out_bn.load_state_dict(state)
        return out_bn.to(next(iter(bn.state_dict().values())).device)
    if isinstance(first, _PER_CHANNEL):
        return first
    return None


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
