"""Differentiable Siamese Augmentation (Zhao & Bilen 2021) as used by MTT, in plain torch.

Parameters are sampled once (`DSA.sample`, on CPU from a torch.Generator, so results do not depend on the
device) and applied with `DSA.apply`, a pure function of (images, params): applying the same AugParams to a
real and a synthetic batch gives both the same transform per sample ("siamese"). Ranges follow DSA's
ParamDiffAug: brightness +-0.5, saturation x[0,2], contrast x[0.5,1.5], crop shift 0.125, cutout 0.5,
flip p=0.5, scale x[1/1.2, 1.2] per axis, rotate +-15 degrees.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from satm_cl.errors import SatmError

BRIGHTNESS = 1.0
SATURATION = 2.0
CONTRAST = 0.5
CROP_RATIO = 0.125
CUTOUT_RATIO = 0.5
FLIP_PROB = 0.5
SCALE_RATIO = 1.2
ROTATE_DEGREES = 15.0

# strategy token -> the ops it applies, in order ("color" is DSA's brightness+saturation+contrast group)
GROUPS: dict[str, tuple[str, ...]] = {
    "color": ("brightness", "saturation", "contrast"),
    "brightness": ("brightness",),
    "saturation": ("saturation",),
    "contrast": ("contrast",),
    "crop": ("crop",),
    "cutout": ("cutout",),
    "flip": ("flip",),
    "scale": ("scale",),
    "rotate": ("rotate",),
}
MODES = ("single", "all")


@dataclass(frozen=True, eq=False)
class AugParams:
    """One draw of augmentation parameters: the ops to apply, in order, and their per-sample tensors.

    `values[op]` has a leading dimension of n (crop: [n,2] int shifts; cutout: [n,2] int centres; flip: [n]
    bool; scale: [n,2]; others: [n]). `image_shape` is the (C,H,W) the pixel-sized parameters were drawn for.
    """

    ops: tuple[str, ...]
    n: int
    image_shape: tuple[int, int, int]
    values: Mapping[str, torch.Tensor]

    def to(self, device: str | torch.device) -> AugParams:
        """The same parameters with every tensor on `device`."""
        moved = {k: v.to(device) for k, v in self.values.items()}
        return AugParams(ops=self.ops, n=self.n, image_shape=self.image_shape, values=moved)


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=generator) * (high - low) + low


def _sample_op(op: str, n: int, shape: tuple[int, int, int], g: torch.Generator) -> torch.Tensor:
    _, h, w = shape
    if op == "brightness":
        return (torch.rand(n, generator=g) - 0.5) * BRIGHTNESS
    if op == "saturation":
        return torch.rand(n, generator=g) * SATURATION
    if op == "contrast":
        return torch.rand(n, generator=g) + CONTRAST
    if op == "crop":
        sh, sw = int(h * CROP_RATIO + 0.5), int(w * CROP_RATIO + 0.5)
        dy = torch.randint(-sh, sh + 1, (n,), generator=g)
        dx = torch.randint(-sw, sw + 1, (n,), generator=g)
        return torch.stack([dy, dx], dim=1)
    if op == "cutout":
        ch, cw = _cutout_size(h, w)
        cy = torch.randint(0, h + (1 - ch % 2), (n,), generator=g)
        cx = torch.randint(0, w + (1 - cw % 2), (n,), generator=g)
        return torch.stack([cy, cx], dim=1)
    if op == "flip":
        return torch.rand(n, generator=g) < FLIP_PROB
    if op == "scale":
        return _uniform(2 * n, 1.0 / SCALE_RATIO, SCALE_RATIO, g).reshape(n, 2)
    if op == "rotate":
        return (torch.rand(n, generator=g) - 0.5) * 2.0 * math.radians(ROTATE_DEGREES)
    raise AssertionError(op)


def _cutout_size(h: int, w: int) -> tuple[int, int]:
    return int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)


def _col(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v.to(x.dtype).reshape(-1, 1, 1, 1)


def _brightness(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return x + _col(v, x)


def _saturation(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    m = x.mean(dim=1, keepdim=True)
    return (x - m) * _col(v, x) + m


def _contrast(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - m) * _col(v, x) + m


def _crop(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Translate each image by integer (dy, dx); pixels shifted in from outside are zero (as DSA's pad)."""
    n, _, h, w = x.shape
    rows = torch.arange(h, device=x.device).unsqueeze(0) + v[:, :1]  # [n,h]
    cols = torch.arange(w, device=x.device).unsqueeze(0) + v[:, 1:]  # [n,w]
    valid = ((rows >= 0) & (rows < h)).unsqueeze(2) & ((cols >= 0) & (cols < w)).unsqueeze(1)  # [n,h,w]
    batch = torch.arange(n, device=x.device).reshape(n, 1, 1)
    gathered = x.permute(0, 2, 3, 1)[
        batch, rows.clamp(0, h - 1).unsqueeze(2), cols.clamp(0, w - 1).unsqueeze(1)
    ]
    return gathered.permute(0, 3, 1, 2) * valid.unsqueeze(1).to(x.dtype)


def _cutout(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Zero a (0.5 H) x (0.5 W) square centred at each sample's (cy, cx), via a multiplicative mask."""
    _, _, h, w = x.shape
    ch, cw = _cutout_size(h, w)
    top = v[:, :1] - ch // 2
    left = v[:, 1:] - cw // 2
    rows = torch.arange(h, device=x.device).unsqueeze(0)
    cols = torch.arange(w, device=x.device).unsqueeze(0)
    in_rows = (rows >= top) & (rows < top + ch)  # [n,h]
    in_cols = (cols >= left) & (cols < left + cw)  # [n,w]
    keep = ~(in_rows.unsqueeze(2) & in_cols.unsqueeze(1))
    return x * keep.unsqueeze(1).to(x.dtype)


def _flip(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return torch.where(v.reshape(-1, 1, 1, 1), x.flip(3), x)


def _affine(
    x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, d: torch.Tensor
) -> torch.Tensor:
    zeros = torch.zeros_like(a)
    theta = torch.stack([torch.stack([a, b, zeros], dim=1), torch.stack([c, d, zeros], dim=1)], dim=1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=True)
    return F.grid_sample(x, grid, align_corners=True)


def _scale(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    sx, sy = v[:, 0], v[:, 1]
    zeros = torch.zeros_like(sx)
    return _affine(x, sx, zeros, zeros, sy)


def _rotate(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    cos, sin = torch.cos(v), torch.sin(v)
    return _affine(x, cos, -sin, sin, cos)


OPS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "brightness": _brightness,
    "saturation": _saturation,
    "contrast": _contrast,
    "crop": _crop,
    "cutout": _cutout,
    "flip": _flip,
    "scale": _scale,
    "rotate": _rotate,
}


class DSA:
    """DSA augmenter: `strategy` is "_"-joined group names; mode "single" picks one group per call (MTT)."""

    def __init__(self, strategy: str = "color_crop_cutout_flip_scale_rotate", mode: str = "single") -> None:
        if mode not in MODES:
            raise SatmError(f"unknown DSA mode {mode!r}; valid: {', '.join(MODES)}")
        tokens = [t for t in strategy.strip().split("_") if t]
        if [t.lower() for t in tokens] == ["none"]:
            tokens = []
        unknown = [t for t in tokens if t not in GROUPS]
        if unknown:
            raise SatmError(f"unknown DSA op {unknown[0]!r}; valid: {', '.join(GROUPS)} (or none)")
        self.strategy = strategy
        self.mode = mode
        self.groups: tuple[str, ...] = tuple(tokens)

    def __repr__(self) -> str:
        return f"DSA(strategy={self.strategy!r}, mode={self.mode!r})"

    @property
    def is_identity(self) -> bool:
        """True when no augmentation is configured."""
        return not self.groups

    def sample(self, n: int, image_shape: tuple[int, int, int], generator: torch.Generator) -> AugParams:
        """Draw parameters for n images of shape (C,H,W) on CPU from `generator` (device-independent)."""
        shape = (int(image_shape[0]), int(image_shape[1]), int(image_shape[2]))
        if not self.groups:
            return AugParams(ops=(), n=n, image_shape=shape, values={})
        if self.mode == "single":
            pick = int(torch.randint(len(self.groups), (1,), generator=generator).item())
            groups: tuple[str, ...] = (self.groups[pick],)
        else:
            groups = self.groups
        ops = tuple(op for group in groups for op in GROUPS[group])
        values = {op: _sample_op(op, n, shape, generator) for op in dict.fromkeys(ops)}
        return AugParams(ops=ops, n=n, image_shape=shape, values=values)

    def apply(self, x: torch.Tensor, params: AugParams) -> torch.Tensor:
        """Apply `params` to x [n,C,H,W]; differentiable w.r.t. x and never modifies x in place."""
        if not params.ops:
            return x
        if x.shape[0] != params.n or tuple(x.shape[1:]) != params.image_shape:
            raise ValueError(
                f"AugParams drawn for {params.n} x {params.image_shape}, got images of shape {tuple(x.shape)}"
            )
        out = x
        for op in params.ops:
            out = OPS[op](out, params.values[op].to(x.device))
        return out.contiguous()

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Sample fresh parameters for x from `generator` and apply them."""
        shape = (int(x.shape[1]), int(x.shape[2]), int(x.shape[3]))
        return self.apply(x, self.sample(int(x.shape[0]), shape, generator))
