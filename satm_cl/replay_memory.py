"""The replay memory a memory-conditioned stream condensation trains beside: images of earlier classes.

A stream memory condensed one experience at a time sees only that experience's classes, so its images
separate those classes from each other and not from the classes already in memory (results/continual).
Conditioning fixes that without reading anything later: the experts train on the experience's real data
plus the memory so far, and the student of the trajectory matching trains on the new synthetic images plus
the same memory images, which stay fixed. `MemoryImages` carries those images (in model-input space) and the
fingerprint that ties an expert store and an artifact to exactly these bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

from satm_cl.errors import SatmError


@dataclass(frozen=True)
class MemoryImages:
    """Replay-memory images (model-input space, CPU float32) and their labels."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if self.x.ndim != 4 or self.y.ndim != 1 or self.x.shape[0] != self.y.shape[0] or self.y.numel() == 0:
            raise SatmError(
                f"a replay memory needs images [n, c, h, w] and n labels, got "
                f"{list(self.x.shape)} and {list(self.y.shape)}"
            )
        object.__setattr__(self, "x", self.x.detach().cpu().float().contiguous())
        object.__setattr__(self, "y", self.y.detach().cpu().long().contiguous())

    @property
    def classes(self) -> list[int]:
        return sorted(int(c) for c in self.y.unique())

    def fingerprint(self) -> str:
        """SHA-256 (first 16 hex digits) of the images' and labels' bytes: same memory, same name."""
        h = hashlib.sha256()
        h.update(str(list(self.x.shape)).encode())
        h.update(self.x.numpy().tobytes())
        h.update(self.y.numpy().tobytes())
        return h.hexdigest()[:16]

    def check(self, fingerprint: str | None, classes: list[int] | None) -> None:
        """Refuse a memory that is not the one a config names, or that holds a class being condensed."""
        if fingerprint != self.fingerprint():
            raise SatmError(
                f"the replay memory given has fingerprint {self.fingerprint()}, the config names "
                f"{fingerprint}"
            )
        overlap = sorted(set(self.classes) & set(classes or []))
        if overlap:
            raise SatmError(f"the replay memory already holds classes {overlap} that are being condensed")


def require_memory(fingerprint: str | None, memory: MemoryImages | None, classes: list[int] | None) -> None:
    """A config naming a memory needs those images, and one naming none must not be given any."""
    if fingerprint is None and memory is None:
        return
    if memory is None:
        raise SatmError(f"this config is conditioned on replay memory {fingerprint}; pass its images")
    if fingerprint is None:
        raise SatmError("replay-memory images were given to a config that names none (set expert.memory)")
    memory.check(fingerprint, classes)


def with_memory(
    x: torch.Tensor, y: torch.Tensor, memory: MemoryImages | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) plus the memory repeated to a class-balanced share: each memory class appears about as often as
    an average class of (x, y) (its images repeated ⌊per-class count / memory per-class count⌋ times, at
    least once), so the experts learn the old classes as more than noise beside thousands of new images."""
    if memory is None:
        return x, y
    mx, my = memory.x.to(x.device), memory.y.to(y.device)
    per_new = y.numel() / max(1, int(y.unique().numel()))
    per_old = my.numel() / len(memory.classes)
    repeat = max(1, int(per_new // per_old))
    return torch.cat([x, mx.repeat(repeat, 1, 1, 1)]), torch.cat([y, my.repeat(repeat)])
