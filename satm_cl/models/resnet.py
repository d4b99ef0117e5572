"""MTT-style ResNet18 for small images: 3×3 stride-1 stem, no stem max pool, global average pool at the end.

`resnet18` uses instance norm (MTT's default), `resnet18_bn` batch norm, and `resnet18_ap` (MTT's
ResNet18BN_AP) downsamples by a stride-1 conv followed by 2×2 average pooling instead of stride-2 convs.
A stage stops downsampling along a side already at 1 (at 2 with instance norm), so any image size works.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from satm_cl.models.base import MODELS, NORMS, check_choice, halving_kernel, make_norm, min_normed_side

STAGES: tuple[tuple[int, bool], ...] = ((64, False), (128, True), (256, True), (512, True))  # (planes, halve)


class BasicBlock(nn.Module):
    """Two 3×3 convs with a residual; `down` (per-side 2 or 1) halves the map by stride or, with
    `avg_pool`, by average pooling after the first conv."""

    def __init__(
        self,
        in_planes: int,
        planes: int,
        down: tuple[int, int] | None,
        norm: str,
        size: tuple[int, int],
        avg_pool: bool,
    ) -> None:
        super().__init__()
        stride = down if down is not None and not avg_pool else (1, 1)
        h, w = (size[0] - 1) // stride[0] + 1, (size[1] - 1) // stride[1] + 1
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = make_norm(norm, planes, h, w)
        self.pool: nn.Module = nn.Identity()
        if down is not None and avg_pool:
            self.pool = nn.AvgPool2d(down)
            h, w = h // down[0], w // down[1]
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = make_norm(norm, planes, h, w)
        self.out_size = (h, w)
        self.shortcut: nn.Module = nn.Identity()
        if down is not None or in_planes != planes:
            parts: list[nn.Module] = [nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False)]
            if down is not None and avg_pool:
                parts.append(nn.AvgPool2d(down))
            parts.append(make_norm(norm, planes, h, w))
            self.shortcut = nn.Sequential(*parts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pool(F.relu(self.bn1(self.conv1(x))))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """BasicBlock ResNet18 ([2, 2, 2, 2]) with a global average pool before the linear classifier."""

    def __init__(
        self, in_channels: int, num_classes: int, image_size: tuple[int, int], norm: str, avg_pool: bool
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = make_norm(norm, 64, *image_size)
        size, in_planes = image_size, 64
        stages: list[nn.Module] = []
        for planes, halve in STAGES:
            blocks: list[nn.Module] = []
            for first in (True, False):
                down = halving_kernel(*size, min_normed_side(norm)) if halve and first else None
                block = BasicBlock(in_planes, planes, down, norm, size, avg_pool)
                blocks.append(block)
                size, in_planes = block.out_size, planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        logits: torch.Tensor = self.classifier(self.pool(out).flatten(1))
        return logits


@MODELS.register("resnet18")
def build_resnet18(
    in_channels: int, num_classes: int, image_size: tuple[int, int], *, norm: str = "instance"
) -> nn.Module:
    """ResNet18 with instance norm by default (MTT's ResNet18)."""
    norm = check_choice("resnet18", "norm", norm, NORMS)
    return ResNet18(in_channels, num_classes, image_size, norm, avg_pool=False)


@MODELS.register("resnet18_bn")
def build_resnet18_bn(in_channels: int, num_classes: int, image_size: tuple[int, int]) -> nn.Module:
    """ResNet18 with batch norm (MTT's ResNet18BN); takes no options."""
    return ResNet18(in_channels, num_classes, image_size, "batch", avg_pool=False)


@MODELS.register("resnet18_ap")
def build_resnet18_ap(
    in_channels: int, num_classes: int, image_size: tuple[int, int], *, norm: str = "batch"
) -> nn.Module:
    """ResNet18 downsampling by average pooling (MTT's ResNet18BN_AP; norm="instance" gives ResNet18_AP)."""
    norm = check_choice("resnet18_ap", "norm", norm, NORMS)
    return ResNet18(in_channels, num_classes, image_size, norm, avg_pool=True)
