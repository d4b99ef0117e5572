"""The replay memory a conditioned stream condensation trains beside: fingerprint, checks, balanced share."""

from __future__ import annotations

import pytest
import torch

from satm_cl.errors import SatmError
from satm_cl.replay_memory import MemoryImages, require_memory, with_memory


def _memory(classes: list[int], per: int = 2, seed: int = 0) -> MemoryImages:
    gen = torch.Generator().manual_seed(seed)
    y = torch.tensor(classes).repeat_interleave(per)
    return MemoryImages(torch.randn(len(y), 1, 4, 4, generator=gen), y)


def test_fingerprint_names_the_bytes() -> None:
    a = _memory([0, 1])
    assert a.fingerprint() == _memory([0, 1]).fingerprint()  # same bytes, same name
    nudged = a.x.clone()
    nudged[0, 0, 0, 0] += 1e-6
    assert MemoryImages(nudged, a.y).fingerprint() != a.fingerprint()
    assert MemoryImages(a.x, a.y.flip(0)).fingerprint() != a.fingerprint()  # labels count too
    assert a.classes == [0, 1]


def test_checks_refuse_another_memory_or_an_overlap() -> None:
    mem = _memory([0, 1])
    require_memory(None, None, [2, 3])
    require_memory(mem.fingerprint(), mem, [2, 3])
    with pytest.raises(SatmError, match="pass its images"):
        require_memory(mem.fingerprint(), None, [2, 3])
    with pytest.raises(SatmError, match="names none"):
        require_memory(None, mem, [2, 3])
    with pytest.raises(SatmError, match="fingerprint"):
        require_memory(_memory([0, 1], seed=1).fingerprint(), mem, [2, 3])
    with pytest.raises(SatmError, match=r"classes \[1\]"):
        require_memory(mem.fingerprint(), mem, [1, 2])
    with pytest.raises(SatmError, match="replay memory needs"):
        MemoryImages(torch.zeros(3, 4, 4), torch.zeros(3))


def test_memory_is_repeated_to_a_class_balanced_share() -> None:
    x = torch.zeros(20, 1, 4, 4)
    y = torch.tensor([2] * 12 + [3] * 8)  # 10 images per new class on average
    mem = _memory([0, 1], per=2)
    bx, by = with_memory(x, y, mem)
    counts = torch.bincount(by).tolist()
    assert counts == [10, 10, 12, 8]  # each memory image 5 times: 2 x 5 = the new classes' mean of 10
    assert torch.equal(bx[:20], x) and torch.equal(bx[20:24], mem.x)
    assert with_memory(x, y, None) == (x, y)
    few = with_memory(x[:2], torch.tensor([2, 3]), mem)[1]
    assert torch.bincount(few).tolist() == [2, 2, 1, 1]  # never fewer than once
