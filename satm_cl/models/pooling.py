"""2×2 average pooling with the exact numbers of `nn.AvgPool2d(2)`, computed faster on a CPU.

ATen's CPU kernels for a 2×2 window walk the map one output at a time; here the same sums are taken on
four strided views at once. Forward, backward and double backward reproduce ATen's arithmetic
operation for operation — forward ((a + b) + c) + d then / 4, backward g / 4 spread over the window,
double backward a pooling again — so every value and gradient is bitwise the one `nn.AvgPool2d(2)`
gives, and a condensation's bytes do not depend on which one ran. Measured in docs/performance.md.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def _pool(x: torch.Tensor) -> torch.Tensor:
    """((top-left + top-right) + bottom-left) + bottom-right, / 4 (an odd last row/column is dropped)."""
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    x = x[..., :h, :w]
    out = x[..., 0::2, 0::2] + x[..., 0::2, 1::2]  # one buffer, summed into in ATen's order
    out += x[..., 1::2, 0::2]
    out += x[..., 1::2, 1::2]
    return out.div_(4)


def _spread(g: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Each value of g / 4 copied over its 2×2 window of a map of `size` (the pooled input's; an odd last
    row/column, which pooling dropped, gets zeros)."""
    q = g / 4
    h, w = 2 * q.shape[-2], 2 * q.shape[-1]
    shape = (*q.shape[:-2], *size)
    out = q.new_empty(shape) if (h, w) == size else q.new_zeros(shape)
    for dy in (0, 1):
        for dx in (0, 1):
            out[..., dy:h:2, dx:w:2] = q
    return out


class _AvgPool2x2(torch.autograd.Function):
    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return _pool(x)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        ctx.size = tuple(inputs[0].shape[-2:])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return _Spread2x2.apply(grad, ctx.size)


class _Spread2x2(torch.autograd.Function):
    @staticmethod
    def forward(grad: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:  # type: ignore[override]
        return _spread(grad, size)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        pass

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return _AvgPool2x2.apply(grad), None


# Where the strided-view kernel was measured faster than ATen's (2-core AVX-512 CPU, fp32, forward +
# backward; docs/performance.md): maps of 8-28 and 64 pixels, 1.6-3x; not on small tensors (the Python
# overhead of the autograd functions) nor on 32-pixel maps, where ATen's kernel is itself fast (0.9x).
# bf16/fp16 maps are pooled in fp32 and rounded once, which is what ATen's kernel does with them, so they
# stay bitwise too (ATen's bf16 kernel took 2x longer than this at 128x64x28x28).
MIN_VALUES = 500_000
ATEN_WIDTHS = (32,)
WIDENED = (torch.bfloat16, torch.float16)


def avg_pool_2x2(x: torch.Tensor) -> torch.Tensor:
    """`F.avg_pool2d(x, 2)`, bitwise, with the strided-view kernel where that was measured faster (CPU)."""
    if x.device.type != "cpu" or x.numel() < MIN_VALUES or x.shape[-1] in ATEN_WIDTHS:
        return F.avg_pool2d(x, 2)
    if x.dtype in WIDENED:
        return _AvgPool2x2.apply(x.float()).to(x.dtype)  # type: ignore[no-any-return]
    if x.dtype in (torch.float32, torch.float64):
        return _AvgPool2x2.apply(x)  # type: ignore[no-any-return]
    return F.avg_pool2d(x, 2)


class AvgPool2x2(nn.Module):
    """`nn.AvgPool2d(2)` with the same numbers, faster on a CPU (see `avg_pool_2x2`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return avg_pool_2x2(x)
