"""MTT-style LeNet (conv6 k5 → pool → conv16 k5 → pool → 120 → 84 → classes), padded for small images.

Padding rule, per spatial side: the first conv pads 2 when the side is below 32 (so 28×28 follows the classic
32×32 geometry, as MTT does for MNIST); the second conv pads 2 only when its unpadded output would be too
small to pool (the side after the first pool is below 6, i.e. images under 12 pixels). Sides below 8 refuse.
"""

from __future__ import annotations

import torch
from torch import nn

from satm_cl.errors import SatmError
from satm_cl.models.base import MODELS, dry_run_features, fmt_size

MIN_SIDE = 8


class LeNet(nn.Module):
    """LeNet-5 with ReLU and max pooling, the small cross-architecture model used by MTT."""

    def __init__(self, in_channels: int, num_classes: int, image_size: tuple[int, int]) -> None:
        super().__init__()
        if min(image_size) < MIN_SIDE:
            raise SatmError(
                f"lenet needs images of at least {MIN_SIDE}×{MIN_SIDE}, got {fmt_size(image_size)}"
            )
        pad1 = tuple(2 if side < 32 else 0 for side in image_size)
        after_pool1 = tuple((side + 2 * p - 4) // 2 for side, p in zip(image_size, pad1, strict=True))
        pad2 = tuple(0 if side >= 6 else 2 for side in after_pool1)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=(pad1[0], pad1[1])),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5, padding=(pad2[0], pad2[1])),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Linear(dry_run_features(self.features, in_channels, image_size), 120),
            nn.ReLU(inplace=True),
            nn.Linear(120, 84),
            nn.ReLU(inplace=True),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.classifier(self.features(x).flatten(1))
        return logits


@MODELS.register("lenet")
def build_lenet(in_channels: int, num_classes: int, image_size: tuple[int, int]) -> nn.Module:
    """LeNet; takes no options."""
    return LeNet(in_channels, num_classes, image_size)
