"""VGG11 as in MTT (instance norm by default), adapted to small images.

A max pool is skipped along a side that is already 1 (with instance norm: that would drop below 2 while
convs remain), so 8×8 works; the classifier's input size comes from a dry run.

With instance norm it only trains at small SGD learning rates (digits, 8×8, whole train split: 99.3 % at
LR 0.003, chance at 0.01 and 0.05; the same failure at 32×32, MTT's own geometry): evaluate it with the
`tuned` LR protocol (docs/evaluation.md) rather than another net's learned α.
"""

from __future__ import annotations

import torch
from torch import nn

from satm_cl.models.base import (
    MODELS,
    NORMS,
    check_choice,
    dry_run_features,
    halving_kernel,
    make_norm,
    min_normed_side,
)

VGG11_CFG: tuple[int | str, ...] = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class VGG(nn.Module):
    """conv3×3 → norm → ReLU stacks with max pools per `cfg`, then a linear layer on the flattened map."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: tuple[int, int],
        cfg: tuple[int | str, ...],
        norm: str,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels, (h, w) = in_channels, image_size
        for i, item in enumerate(cfg):
            if isinstance(item, int):
                layers += [nn.Conv2d(channels, item, kernel_size=3, padding=1), make_norm(norm, item, h, w)]
                layers.append(nn.ReLU(inplace=True))
                channels = item
                continue
            normed_later = any(isinstance(later, int) for later in cfg[i + 1 :])
            kernel = halving_kernel(h, w, min_normed_side(norm) if normed_later else 1)
            if kernel is not None:
                layers.append(nn.MaxPool2d(kernel))
                h, w = h // kernel[0], w // kernel[1]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(dry_run_features(self.features, in_channels, image_size), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.classifier(self.features(x).flatten(1))
        return logits


@MODELS.register("vgg11")
def build_vgg11(
    in_channels: int, num_classes: int, image_size: tuple[int, int], *, norm: str = "instance"
) -> nn.Module:
    """VGG11; `norm` is instance (MTT's default), batch, layer or none."""
    return VGG(in_channels, num_classes, image_size, VGG11_CFG, check_choice("vgg11", "norm", norm, NORMS))
