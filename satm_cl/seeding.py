"""The one seeding helper: every random choice in the project draws from a recorded seed."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import torch


def derive_seed(seed: int, *keys: object) -> int:
    """A stable 63-bit seed from a base seed and any labels (e.g. "expert", 3): same inputs, same seed."""
    text = "/".join([str(seed), *map(str, keys)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def make_generator(seed: int, *keys: object, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch.Generator seeded from `derive_seed(seed, *keys)`."""
    gen = torch.Generator(device=device)
    gen.manual_seed(derive_seed(seed, *keys))
    return gen


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch global RNGs (for code we do not control, e.g. Avalanche)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
