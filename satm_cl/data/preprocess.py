"""Pixel space <-> model-input space: per-channel normalisation, then optional ZCA whitening (as in MTT).

ZCA follows kornia's ZCAWhitening(eps=0.1) used by MTT: on the normalised, flattened train split X (N x D)
with mean m, cov = (X-m)^T (X-m) / (N-1) = U diag(S) U^T, W = U diag(1/sqrt(S+eps)) U^T and
transform(x) = (x - m) W. The inverse uses U diag(sqrt(S+eps)) U^T.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

CHUNK_ROWS = 4096
# Above this many features the covariance is accumulated in float32 to bound memory.
FLOAT64_MAX_FEATURES = 4096
# Above this many features the eigendecomposition runs in float32: float64 eigh of a 3072x3072 (CIFAR)
# covariance takes minutes on a CPU, float32 a few seconds-tens of seconds; eps=0.1 keeps it well conditioned.
FLOAT64_EIGH_MAX_FEATURES = 1024


def _as_channel_tensor(values: Sequence[float] | torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(values, dtype=torch.float32).reshape(-1).clone()


def _chunked_affine(
    flat: torch.Tensor, matrix: torch.Tensor, pre: torch.Tensor | None, post: torch.Tensor | None
) -> torch.Tensor:
    """((flat - pre) @ matrix) + post over row chunks (keeps temporary memory bounded; differentiable)."""
    pieces = []
    for start in range(0, flat.shape[0], CHUNK_ROWS):
        chunk = flat[start : start + CHUNK_ROWS]
        if pre is not None:
            chunk = chunk - pre
        chunk = chunk @ matrix
        if post is not None:
            chunk = chunk + post
        pieces.append(chunk)
    if not pieces:
        return flat.new_zeros((0, matrix.shape[1]))
    return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=0)


@dataclass(frozen=True, eq=False)
class Preprocessor:
    """Maps [0,1] pixels to model inputs (normalise, optional ZCA) and back; fit once on the train split."""

    mean: torch.Tensor
    std: torch.Tensor
    zca_mean: torch.Tensor | None = None
    zca_matrix: torch.Tensor | None = None
    zca_inverse: torch.Tensor | None = None

    @property
    def zca(self) -> bool:
        """Whether ZCA whitening is part of the transform."""
        return self.zca_matrix is not None

    @classmethod
    def fit(
        cls,
        train_x: torch.Tensor,
        mean: Sequence[float] | torch.Tensor,
        std: Sequence[float] | torch.Tensor,
        zca: bool,
        zca_eps: float = 0.1,
    ) -> Preprocessor:
        """Build the preprocessor; with `zca`, fit the whitening on the normalised train images [N,C,H,W]."""
        base = cls(mean=_as_channel_tensor(mean), std=_as_channel_tensor(std))
        if not zca:
            return base
        with torch.no_grad():
            x = base._normalise(train_x.detach().to("cpu", torch.float32))
            flat = x.reshape(x.shape[0], -1)
            n, d = flat.shape
            if n < 2:
                raise ValueError("ZCA needs at least two training images")
            dtype = torch.float64 if d <= FLOAT64_MAX_FEATURES else torch.float32
            total = torch.zeros(d, dtype=dtype)
            for start in range(0, n, CHUNK_ROWS):
                total += flat[start : start + CHUNK_ROWS].to(dtype).sum(dim=0)
            m = total / n
            cov = torch.zeros(d, d, dtype=dtype)
            for start in range(0, n, CHUNK_ROWS):
                centred = flat[start : start + CHUNK_ROWS].to(dtype) - m
                cov += centred.T @ centred
            cov /= n - 1
            eigh_dtype = torch.float64 if d <= FLOAT64_EIGH_MAX_FEATURES else torch.float32
            eigvals, eigvecs = torch.linalg.eigh(cov.to(eigh_dtype))
            eigvals, eigvecs = eigvals.to(dtype), eigvecs.to(dtype)
            eigvals = eigvals.clamp_min(0.0) + zca_eps
            whiten = (eigvecs * eigvals.rsqrt()) @ eigvecs.T
            colour = (eigvecs * eigvals.sqrt()) @ eigvecs.T
        return replace(
            base,
            zca_mean=m.to(torch.float32),
            zca_matrix=whiten.to(torch.float32).contiguous(),
            zca_inverse=colour.to(torch.float32).contiguous(),
        )

    @classmethod
    def from_state(
        cls,
        mean: Sequence[float] | torch.Tensor,
        std: Sequence[float] | torch.Tensor,
        tensors: dict[str, torch.Tensor],
    ) -> Preprocessor:
        """Rebuild from dataset stats plus `tensors()` output; the ZCA inverse is recomputed in float64."""
        base = cls(mean=_as_channel_tensor(mean), std=_as_channel_tensor(std))
        if "zca_matrix" not in tensors:
            return base
        matrix = tensors["zca_matrix"].detach().to("cpu", torch.float32).contiguous()
        inverse = torch.linalg.inv(matrix.to(torch.float64)).to(torch.float32).contiguous()
        zca_mean = tensors["zca_mean"].detach().to("cpu", torch.float32).reshape(-1).contiguous()
        return replace(base, zca_mean=zca_mean, zca_matrix=matrix, zca_inverse=inverse)

    def tensors(self) -> dict[str, torch.Tensor]:
        """The fitted ZCA state to save alongside a distilled set ({} without ZCA)."""
        if self.zca_matrix is None or self.zca_mean is None:
            return {}
        return {"zca_mean": self.zca_mean, "zca_matrix": self.zca_matrix}

    def to(self, device: str | torch.device) -> Preprocessor:
        """A copy with every tensor on `device` (avoids re-copying large ZCA matrices on each call)."""

        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device)

        return Preprocessor(
            mean=self.mean.to(device),
            std=self.std.to(device),
            zca_mean=move(self.zca_mean),
            zca_matrix=move(self.zca_matrix),
            zca_inverse=move(self.zca_inverse),
        )

    def _stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (1, -1, 1, 1)
        mean = self.mean.to(x.device, x.dtype).reshape(shape)
        std = self.std.to(x.device, x.dtype).reshape(shape)
        return mean, std

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(x)
        return (x - mean) / std

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """[0,1] pixels [N,C,H,W] -> model-input space (differentiable, on x's device and dtype)."""
        out = self._normalise(x)
        if self.zca_matrix is None or self.zca_mean is None:
            return out
        matrix = self.zca_matrix.to(x.device, x.dtype)
        m = self.zca_mean.to(x.device, x.dtype)
        return _chunked_affine(out.reshape(x.shape[0], -1), matrix, m, None).reshape(x.shape)

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        """Model-input space -> [0,1] pixel space (un-whiten, then de-normalise); not clamped."""
        out = x
        if self.zca_inverse is not None and self.zca_mean is not None:
            inv = self.zca_inverse.to(x.device, x.dtype)
            m = self.zca_mean.to(x.device, x.dtype)
            out = _chunked_affine(x.reshape(x.shape[0], -1), inv, None, m).reshape(x.shape)
        mean, std = self._stats(x)
        return out * std + mean
