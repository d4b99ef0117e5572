"""A plain multilayer perceptron on flattened pixels: the weakest cross-architecture evaluation target."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from satm_cl.errors import SatmError
from satm_cl.models.base import MODELS, check_int


class MLP(nn.Module):
    """flatten → (Linear → ReLU) per hidden width → Linear to logits."""

    def __init__(
        self, in_channels: int, num_classes: int, image_size: tuple[int, int], hidden: tuple[int, ...]
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        features = in_channels * image_size[0] * image_size[1]
        for units in hidden:
            layers += [nn.Linear(features, units), nn.ReLU(inplace=True)]
            features = units
        self.body = nn.Sequential(*layers)
        self.classifier = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.classifier(self.body(x.flatten(1)))
        return logits


@MODELS.register("mlp")
def build_mlp(
    in_channels: int,
    num_classes: int,
    image_size: tuple[int, int],
    *,
    hidden: Sequence[int] = (128, 128),
) -> nn.Module:
    """MLP with hidden widths `hidden` (a list is accepted too, as JSON configs give lists)."""
    if isinstance(hidden, str) or not isinstance(hidden, Sequence):
        raise SatmError(f"mlp: hidden must be a list of positive integers, got {hidden!r}")
    widths = tuple(check_int("mlp", "hidden width", units) for units in hidden)
    return MLP(in_channels, num_classes, image_size, widths)
