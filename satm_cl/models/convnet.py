"""MTT's ConvNet: `depth` blocks of conv3×3 → norm → ReLU → pool, then one linear layer on the flat map."""

from __future__ import annotations

import torch
from torch import nn

from satm_cl.errors import SatmError
from satm_cl.models.base import MODELS, NORMS, check_choice, check_int, fmt_size, make_norm
from satm_cl.models.pooling import AvgPool2x2

POOLINGS = ("avg", "max", "none")


def max_pooled_depth(size: tuple[int, int]) -> int:
    """How many 2× poolings a map of `size` survives before a side would drop below 1 (8×8 → 3)."""
    side, depth = min(size), 0
    while side >= 2:
        side //= 2
        depth += 1
    return depth


class ConvNet(nn.Module):
    """The default trajectory-matching backbone (MTT's ConvNet, e.g. ConvNetD3 with instance norm)."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: tuple[int, int],
        width: int,
        depth: int,
        norm: str,
        pooling: str,
    ) -> None:
        super().__init__()
        if pooling != "none" and depth > max_pooled_depth(image_size):
            raise SatmError(
                f"convnet depth {depth} is too deep for {fmt_size(image_size)} images with pooling; "
                f"the maximum depth for that size is {max_pooled_depth(image_size)}"
            )
        layers: list[nn.Module] = []
        channels, (h, w) = in_channels, image_size
        for _ in range(depth):
            layers.append(nn.Conv2d(channels, width, kernel_size=3, padding=1))
            channels = width
            if norm != "none":
                layers.append(make_norm(norm, width, h, w))
            layers.append(nn.ReLU(inplace=True))
            if pooling != "none":
                layers.append(AvgPool2x2() if pooling == "avg" else nn.MaxPool2d(2))
                h, w = h // 2, w // 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels * h * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.classifier(self.features(x).flatten(1))
        return logits


@MODELS.register("convnet")
def build_convnet(
    in_channels: int,
    num_classes: int,
    image_size: tuple[int, int],
    *,
    width: int = 128,
    depth: int = 3,
    norm: str = "instance",
    pooling: str = "avg",
) -> nn.Module:
    """ConvNet with MTT's defaults (width 128, depth 3, instance norm, average pooling)."""
    return ConvNet(
        in_channels,
        num_classes,
        image_size,
        width=check_int("convnet", "width", width),
        depth=check_int("convnet", "depth", depth),
        norm=check_choice("convnet", "norm", norm, NORMS),
        pooling=check_choice("convnet", "pooling", pooling, POOLINGS),
    )
