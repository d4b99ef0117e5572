"""StackedConvNet: R ConvNets as one network give each run exactly its own outputs and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from satm_cl.models import create_model
from satm_cl.models.stacked import stack_convnets


def _nets(runs: int = 3, size: int = 8, **kw: object) -> list[torch.nn.Module]:
    opts = {"width": 8, "depth": 2, **kw}
    return [create_model("convnet", 2, 5, (size, size), seed=10 + r, **opts) for r in range(runs)]


@pytest.mark.parametrize(
    "opts", [{"norm": "instance"}, {"norm": "none"}, {"norm": "batch"}, {"pooling": "max", "depth": 3}]
)
def test_stacked_forward_and_grads_equal_each_run(opts: dict) -> None:
    size = 16 if opts.get("depth") == 3 else 8
    nets = _nets(size=size, **opts)
    stacked = stack_convnets(nets)
    assert stacked is not None
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 2, size, size, generator=gen)  # run r gets its own batch x[:, r]
    y = torch.randint(5, (4, 3), generator=gen)
    out = stacked(x)
    F.cross_entropy(out.flatten(0, 1), y.flatten(), reduction="sum").backward()
    for r, net in enumerate(nets):
        ref = net(x[:, r])
        torch.testing.assert_close(out[:, r], ref, rtol=1e-5, atol=1e-5)
        F.cross_entropy(ref, y[:, r], reduction="sum").backward()
        torch.testing.assert_close(stacked.weight.grad[r], net.classifier.weight.grad, rtol=1e-4, atol=1e-5)
        conv = net.features[0]
        width = conv.out_channels
        grad = stacked.features[0].weight.grad[r * width : (r + 1) * width]
        torch.testing.assert_close(grad, conv.weight.grad, rtol=1e-4, atol=1e-5)


def test_only_what_stacks_exactly_is_stacked() -> None:
    assert stack_convnets(_nets(norm="layer")) is None  # layer norm normalises across channels
    assert stack_convnets([create_model("mlp", 2, 5, (8, 8), seed=0)] * 2) is None
    mixed = [*_nets(runs=1), create_model("convnet", 2, 5, (8, 8), seed=0, width=4, depth=2)]
    assert stack_convnets(mixed) is None
    assert stack_convnets([]) is None
