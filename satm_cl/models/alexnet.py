"""MTT's small AlexNet for 32×32 images (five convs, three max pools, one linear layer).

A max pool is skipped along any side that is already 1, so images smaller than 8×8 still work; the
classifier's input size comes from a dry run, so any size gives a valid model.
"""

from __future__ import annotations

import torch
from torch import nn

from satm_cl.models.base import MODELS, dry_run_features, halving_kernel


class AlexNet(nn.Module):
    """conv128 k5 → pool → conv192 k5 → pool → conv256 → conv192 → conv192 → pool → linear (ReLU between)."""

    def __init__(self, in_channels: int, num_classes: int, image_size: tuple[int, int]) -> None:
        super().__init__()
        h, w = image_size
        layers: list[nn.Module] = []
        plan: list[tuple[int, int, bool]] = [  # (out channels, kernel, pool after)
            (128, 5, True),
            (192, 5, True),
            (256, 3, False),
            (192, 3, False),
            (192, 3, True),
        ]
        channels = in_channels
        for out, kernel, pool in plan:
            layers += [
                nn.Conv2d(channels, out, kernel_size=kernel, padding=kernel // 2),
                nn.ReLU(inplace=True),
            ]
            channels = out
            pool_kernel = halving_kernel(h, w) if pool else None
            if pool_kernel is not None:
                layers.append(nn.MaxPool2d(pool_kernel))
                h, w = h // pool_kernel[0], w // pool_kernel[1]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(dry_run_features(self.features, in_channels, image_size), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.classifier(self.features(x).flatten(1))
        return logits


@MODELS.register("alexnet")
def build_alexnet(in_channels: int, num_classes: int, image_size: tuple[int, int]) -> nn.Module:
    """AlexNet; takes no options."""
    return AlexNet(in_channels, num_classes, image_size)
