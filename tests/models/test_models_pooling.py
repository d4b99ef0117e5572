"""The fast 2×2 average pool gives `nn.AvgPool2d(2)`'s numbers bitwise: value, gradient, hypergradient."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from satm_cl.models import create_model
from satm_cl.models.pooling import MIN_VALUES, AvgPool2x2, _AvgPool2x2, avg_pool_2x2


def _unroll_numbers(pool, x0: torch.Tensor, w0: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Pooled map, a weight gradient taken with create_graph, and the input hypergradient through it."""
    x, w = x0.clone().requires_grad_(True), w0.clone().requires_grad_(True)
    pooled = pool(torch.tanh(F.conv2d(x, w, padding=1)))
    loss = (pooled.flatten(1).sum(1) ** 2).mean()
    (gw,) = torch.autograd.grad(loss, w, create_graph=True)
    (hx,) = torch.autograd.grad((gw * gw).sum(), x)
    return pooled, gw, hx


@pytest.mark.parametrize("size", [(8, 8), (9, 7), (14, 14), (28, 28), (5, 6)])
def test_forward_gradient_and_hypergradient_are_bitwise_avgpool2d(size: tuple[int, int]) -> None:
    g = torch.Generator().manual_seed(sum(size))
    x0 = torch.randn(4, 3, *size, generator=g)
    w0 = torch.randn(8, 3, 3, 3, generator=g)
    ours = _unroll_numbers(_AvgPool2x2.apply, x0, w0)  # the strided-view kernel, whatever the size
    aten = _unroll_numbers(lambda t: F.avg_pool2d(t, 2), x0, w0)
    for a, b in zip(ours, aten, strict=True):
        assert a.shape == b.shape
        assert torch.equal(a, b)


def test_gradients_are_correct_in_double_precision() -> None:
    x = torch.randn(2, 3, 7, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_AvgPool2x2.apply, (x,))
    assert torch.autograd.gradgradcheck(_AvgPool2x2.apply, (x,))


def test_dispatch_keeps_aten_where_it_is_faster_and_numbers_agree_both_ways() -> None:
    small = torch.randn(2, 4, 8, 8)
    assert small.numel() < MIN_VALUES
    assert torch.equal(avg_pool_2x2(small), F.avg_pool2d(small, 2))
    big = torch.randn(2, 64, 70, 70)  # above the size threshold: the strided-view kernel
    assert big.numel() >= MIN_VALUES
    out = avg_pool_2x2(big.requires_grad_(True))
    assert out.grad_fn is not None and "AvgPool2x2" in type(out.grad_fn).__name__
    assert torch.equal(out, F.avg_pool2d(big, 2))


def test_convnet_uses_it_and_matches_a_convnet_with_torch_pooling() -> None:
    model = create_model("convnet", 1, 10, 28, seed=0, width=64, depth=3, norm="instance")
    assert sum(isinstance(m, AvgPool2x2) for m in model.modules()) == 3
    reference = create_model("convnet", 1, 10, 28, seed=0, width=64, depth=3, norm="instance")
    for i, m in enumerate(reference.features):
        if isinstance(m, AvgPool2x2):
            reference.features[i] = torch.nn.AvgPool2d(2)
    x = torch.randn(200, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    y = torch.arange(200) % 10
    grads = []
    for net in (model, reference):
        loss = F.cross_entropy(net(x), y)
        grads.append(torch.autograd.grad(loss, list(net.parameters())))
    for a, b in zip(*grads, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_maps_pool_in_fp32_and_stay_bitwise_atens(dtype: torch.dtype) -> None:
    """ATen sums a bf16/fp16 window in fp32 and rounds once; pooling the widened map does the same."""
    g = torch.Generator().manual_seed(3)
    x0 = (torch.randn(2, 64, 70, 70, generator=g) * 3).to(dtype)
    assert x0.numel() >= MIN_VALUES  # the strided-view path
    s0 = torch.randn(1, generator=g).to(dtype)
    go = torch.randn(2, 64, 35, 35, generator=g).to(dtype)
    results = []
    for pool in (avg_pool_2x2, lambda t: F.avg_pool2d(t, 2)):
        x, s = x0.clone().requires_grad_(True), s0.clone().requires_grad_(True)
        y = pool(x * s)
        (gx,) = torch.autograd.grad((y * go).sum(), x, create_graph=True)
        (gs,) = torch.autograd.grad((gx.float() ** 2).sum(), s)
        results.append((y, gx, gs))
    assert results[0][0].dtype == dtype
    for a, b in zip(*results, strict=True):
        assert torch.equal(a, b)
