"""Corrupted copies of a test split (in the spirit of MNIST-C and CIFAR-10-C): a registry of batched shifts.

Every corruption maps [N,C,H,W] images in [0,1] to corrupted images in [0,1] of the same shape, with one
magnitude per severity 1, 2, 3 (severity 3 is the strongest). All randomness comes from one generator seeded
by `derive_seed(seed, "corruption", name)`, drawn in the same order at every severity, so severity 2 of an
image is the same noise / direction / field as severity 1, only larger. Sizes in pixels are given for a
28-pixel side and scaled by `min(H, W) / 28` (REF_SIDE), so any image size gets the same relative shift.
Outputs are quantised to 8 bits (round(255 x) / 255), as MNIST-C and CIFAR-10-C store PNGs.

name, magnitude at severity 1, 2, 3, and what the magnitude is:

- gaussian_noise  0.08, 0.16, 0.24  std of additive N(0, s²) noise per pixel
- shot_noise      60, 20, 8         photons at white: x -> Poisson(λ x) / λ (smaller λ is noisier)
- gaussian_blur   0.6, 1.0, 1.5     blur std in pixels at 28 px (separable, radius ceil(3σ), reflect pad)
- contrast        0.6, 0.4, 0.2     factor c: x -> (x - m) c + m, m = the image's mean
- brightness      0.15, 0.30, 0.45  added to every pixel (an HSV value shift; the same for grey images)
- rotation        15, 30, 45        degrees; sign drawn per image (bilinear, black fill outside)
- translation     2, 4, 6           shift in pixels at 28 px, direction drawn per image (bilinear, black)
- elastic         0.75, 1.5, 2.25   RMS displacement in pixels at 28 px of a per-image random field:
                                    uniform noise smoothed by a Gaussian of std 3 px at 28 px, scaled
                                    to unit RMS (bilinear, black fill)
- pixelate        0.6, 0.45, 0.3    side fraction: area-downsample to round(f·side), nearest-upsample

Clipping to [0,1] follows every corruption. Corrupted sets are cached (`corrupted_test_set`) as uint8
safetensors named by a hash of everything that determines their bytes, written atomically.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from satm_cl.errors import SatmError
from satm_cl.io import config_hash, write_tensors
from satm_cl.registry import Registry
from satm_cl.seeding import make_generator

SEVERITIES = (1, 2, 3)
REF_SIDE = 28  # pixel-valued parameters are given for this side and scaled to the image's smaller side
ELASTIC_SMOOTH_PX = 3.0  # std (px at REF_SIDE) of the Gaussian that smooths elastic displacement noise
VERSION = 1  # bump when any corruption's bytes change, so cached sets are regenerated
# Datasets whose `ood` suite includes every corruption unless told otherwise (`corruptions` option).
CORRUPTED_BY_DEFAULT = ("fashion-mnist",)

# (images [N,C,H,W] in [0,1], magnitude, generator) -> corrupted images (any range; clipped by `corrupt`)
CorruptionFn = Callable[[torch.Tensor, float, torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class Corruption:
    """A registered shift: its function, one magnitude per severity and what the magnitude means."""

    fn: CorruptionFn
    magnitudes: tuple[float, float, float]
    meaning: str


CORRUPTIONS: Registry[Corruption] = Registry("corruption")


def _register(
    name: str, magnitudes: tuple[float, float, float], meaning: str
) -> Callable[[CorruptionFn], CorruptionFn]:
    def deco(fn: CorruptionFn) -> CorruptionFn:
        CORRUPTIONS.register(name)(Corruption(fn, magnitudes, meaning))
        return fn

    return deco


def list_corruptions() -> list[str]:
    """Names accepted by `corrupt`, sorted."""
    return CORRUPTIONS.names()


def _scale(x: torch.Tensor) -> float:
    return min(int(x.shape[-2]), int(x.shape[-1])) / REF_SIDE


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """A normalised 1-D Gaussian of std `sigma` pixels and radius ceil(3 sigma) (at least 1)."""
    radius = max(1, math.ceil(3.0 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def _reflect(index: torch.Tensor, n: int) -> torch.Tensor:
    """Indices folded back into [0, n) by mirror reflection without repeating the edge (numpy's "reflect")."""
    if n == 1:
        return torch.zeros_like(index)
    period = 2 * (n - 1)
    folded = index.remainder(period)
    return torch.where(folded > n - 1, period - folded, folded)


def blur_matrix(n: int, sigma: float) -> torch.Tensor:
    """[n, n] matrix applying a `gaussian_kernel(sigma)` blur along one axis of length n, reflect padded."""
    k = gaussian_kernel(sigma)
    r = (k.numel() - 1) // 2
    rows = torch.arange(n).unsqueeze(1).expand(n, k.numel())
    cols = _reflect(rows + torch.arange(-r, r + 1).unsqueeze(0), n)
    m = torch.zeros(n, n)
    m.index_put_((rows, cols), k.unsqueeze(0).expand(n, -1).contiguous(), accumulate=True)
    return m


def gaussian_filter(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of [N,C,H,W] maps (reflect padding), as two matrix products: fast on CPU
    for small images, and exact for kernels wider than the image."""
    mh = blur_matrix(int(x.shape[-2]), sigma).to(x)
    mw = blur_matrix(int(x.shape[-1]), sigma).to(x)
    return torch.matmul(torch.matmul(mh, x), mw.T)


def _warp(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@_register("gaussian_noise", (0.08, 0.16, 0.24), "std of additive Gaussian noise")
def _gaussian_noise(x: torch.Tensor, std: float, g: torch.Generator) -> torch.Tensor:
    return x + std * torch.randn(x.shape, generator=g)


@_register("shot_noise", (60.0, 20.0, 8.0), "photons at white (Poisson rate)")
def _shot_noise(x: torch.Tensor, rate: float, g: torch.Generator) -> torch.Tensor:
    return torch.poisson(x.clamp(0.0, 1.0) * rate, generator=g) / rate


@_register("gaussian_blur", (0.6, 1.0, 1.5), "blur std in pixels at 28 px")
def _gaussian_blur(x: torch.Tensor, sigma: float, g: torch.Generator) -> torch.Tensor:
    return gaussian_filter(x, sigma * _scale(x))


@_register("contrast", (0.6, 0.4, 0.2), "contrast factor around the image mean")
def _contrast(x: torch.Tensor, factor: float, g: torch.Generator) -> torch.Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * factor + mean


@_register("brightness", (0.15, 0.30, 0.45), "added to every pixel")
def _brightness(x: torch.Tensor, shift: float, g: torch.Generator) -> torch.Tensor:
    return x + shift


@_register("rotation", (15.0, 30.0, 45.0), "rotation in degrees, sign drawn per image")
def _rotation(x: torch.Tensor, degrees: float, g: torch.Generator) -> torch.Tensor:
    sign = torch.randint(0, 2, (x.shape[0],), generator=g).float() * 2 - 1
    angle = sign * math.radians(degrees)
    cos, sin = torch.cos(angle), torch.sin(angle)
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    return _warp(x, theta)


@_register("translation", (2.0, 4.0, 6.0), "shift in pixels at 28 px, direction drawn per image")
def _translation(x: torch.Tensor, pixels: float, g: torch.Generator) -> torch.Tensor:
    direction = torch.rand(x.shape[0], generator=g) * (2 * math.pi)
    h, w = int(x.shape[-2]), int(x.shape[-1])
    shift = pixels * _scale(x)
    # affine_grid works in [-1, 1] coordinates: one pixel is 2 / side; the grid samples at (p - t)
    tx = -torch.cos(direction) * shift * 2.0 / w
    ty = -torch.sin(direction) * shift * 2.0 / h
    one, zero = torch.ones_like(tx), torch.zeros_like(tx)
    theta = torch.stack([torch.stack([one, zero, tx], 1), torch.stack([zero, one, ty], 1)], 1)
    return _warp(x, theta)


@_register("elastic", (0.75, 1.5, 2.25), "RMS displacement in pixels at 28 px")
def _elastic(x: torch.Tensor, pixels: float, g: torch.Generator) -> torch.Tensor:
    n, _, h, w = x.shape
    noise = torch.rand((n, 2, h, w), generator=g) * 2 - 1
    field = gaussian_filter(noise, ELASTIC_SMOOTH_PX * _scale(x))
    rms = field.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt().clamp_min(1e-12)
    disp = field / rms * (pixels * _scale(x))  # [N, 2, H, W] displacement in pixels (dx, dy)
    ys = (torch.arange(h, dtype=x.dtype) + 0.5) * 2.0 / h - 1.0
    xs = (torch.arange(w, dtype=x.dtype) + 0.5) * 2.0 / w - 1.0
    base_y, base_x = torch.meshgrid(ys, xs, indexing="ij")
    grid_x = base_x + disp[:, 0] * 2.0 / w
    grid_y = base_y + disp[:, 1] * 2.0 / h
    grid = torch.stack([grid_x, grid_y], dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@_register("pixelate", (0.6, 0.45, 0.3), "side fraction kept before nearest upsampling")
def _pixelate(x: torch.Tensor, fraction: float, g: torch.Generator) -> torch.Tensor:
    h, w = int(x.shape[-2]), int(x.shape[-1])
    small = (max(1, round(h * fraction)), max(1, round(w * fraction)))
    return F.interpolate(F.interpolate(x, size=small, mode="area"), size=(h, w), mode="nearest")


def _check(name: str, severity: int) -> Corruption:
    spec = CORRUPTIONS.get(name)
    if severity not in SEVERITIES:
        raise SatmError(f"corruption severity must be one of {SEVERITIES}, got {severity!r}")
    return spec


def quantise(x01: torch.Tensor) -> torch.Tensor:
    """[0,1] floats as 8-bit integers (round half to even), the storage format of corrupted sets."""
    return torch.round(x01.clamp(0.0, 1.0) * 255.0).to(torch.uint8)


def corrupt(x01: torch.Tensor, name: str, severity: int, seed: int = 0) -> torch.Tensor:
    """`x01` ([N,C,H,W] in [0,1], CPU) with corruption `name` at `severity`, clipped and quantised to 8 bits
    (float32 in [0,1]); a pure function of (images, name, severity, seed)."""
    spec = _check(name, severity)
    if x01.dim() != 4:
        raise SatmError(f"corrupt expects [N,C,H,W] images, got shape {tuple(x01.shape)}")
    x = x01.detach().to("cpu", torch.float32)
    out = spec.fn(x, spec.magnitudes[severity - 1], make_generator(seed, "corruption", name))
    return quantise(out).to(torch.float32) / 255.0


def corrupted_name(dataset: str, name: str, severity: int) -> str:
    """The `test_dataset` label of a corrupted copy, e.g. `fashion-mnist-C/gaussian_noise/2` (the report
    parses this form)."""
    return f"{dataset}-C/{name}/{severity}"


def resolve_corruptions(dataset: str, option: str | Sequence[str] | None) -> tuple[str, ...]:
    """Which corruptions a dataset's `ood` suite uses: None = the dataset's default (all for
    CORRUPTED_BY_DEFAULT, none otherwise); "all" / "none" / names (comma-separated or a list)."""
    if option is None:
        return tuple(list_corruptions()) if dataset in CORRUPTED_BY_DEFAULT else ()
    names = [s.strip() for s in option.split(",")] if isinstance(option, str) else [str(s) for s in option]
    names = [n for n in names if n]
    if names == ["all"]:
        return tuple(list_corruptions())
    if names in (["none"], []):
        return ()
    for n in names:
        CORRUPTIONS.get(n)
    return tuple(dict.fromkeys(names))


def _fingerprint(x01: torch.Tensor) -> str:
    data = x01.detach().to("cpu", torch.float32).contiguous()
    return hashlib.sha256(data.numpy().tobytes()).hexdigest()[:16]


def corrupted_test_set(
    x01: torch.Tensor, dataset: str, name: str, severity: int, seed: int, cache: Path
) -> tuple[torch.Tensor, Path]:
    """`corrupt(x01, ...)` read from, or generated into, `<cache>/corruptions/<dataset>/`; returns the
    images (float32 in [0,1]) and the file. The file name hashes the clean images, the corruption, its
    magnitude, the seed and VERSION, so a change to any of them gives a new file."""
    spec = _check(name, severity)
    key = {
        "dataset": dataset,
        "images": _fingerprint(x01),
        "shape": list(x01.shape),
        "corruption": name,
        "severity": severity,
        "magnitude": spec.magnitudes[severity - 1],
        "seed": seed,
        "version": VERSION,
    }
    path = Path(cache) / "corruptions" / dataset / f"{name}-{severity}-{config_hash(key)}.safetensors"
    if path.is_file():
        try:
            stored = load_file(str(path))["images"]
            if tuple(stored.shape) == tuple(x01.shape) and stored.dtype == torch.uint8:
                return stored.to(torch.float32) / 255.0, path
        except (OSError, KeyError, RuntimeError):
            pass  # unreadable cache entry: regenerate and overwrite it below
    images = corrupt(x01, name, severity, seed)
    meta = {k: str(v) for k, v in key.items()}
    write_tensors(path, {"images": quantise(images)}, metadata=meta)
    return images, path
