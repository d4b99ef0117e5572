"""Memory-conditioned condensation: experts and student train beside fixed replay-memory images."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from _tiny import tiny_config

from satm_cl.condense import condense
from satm_cl.condense.engine import Condenser, State
from satm_cl.condense.hypergrad import Unroller
from satm_cl.config import CondenseConfig
from satm_cl.errors import SatmError
from satm_cl.experts.store import TrajectoryStore, store_path
from satm_cl.replay_memory import MemoryImages

CPU = torch.device("cpu")


def _memory(seed: int) -> MemoryImages:
    """Two images each of classes 0 and 1 (what an earlier experience's set would hold)."""
    gen = torch.Generator().manual_seed(seed)
    return MemoryImages(torch.randn(4, 1, 8, 8, generator=gen), torch.tensor([0, 0, 1, 1]))


def _config(memory: MemoryImages | None) -> CondenseConfig:
    cfg = tiny_config(iterations=2, eval_every=2)
    fingerprint = None if memory is None else memory.fingerprint()
    return replace(cfg, expert=replace(cfg.expert, classes=[2, 3], memory=fingerprint))


def test_the_student_trains_on_the_learned_images_then_the_fixed_memory(
    cache_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mem = _memory(0)
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    grads: list[torch.Tensor] = []
    real, real_outer = Unroller.hypergradient, Condenser.hypergradients

    def spy(self: Unroller, x: torch.Tensor, y: torch.Tensor, *args: object, **kw: object):
        seen.append((x.detach().clone(), y.clone()))
        return real(self, x, y, *args, **kw)  # type: ignore[arg-type]

    def spy_outer(self: Condenser, st: State):
        res, gx, glr = real_outer(self, st)
        grads.append(gx)
        return res, gx, glr

    monkeypatch.setattr(Unroller, "hypergradient", spy)
    monkeypatch.setattr(Condenser, "hypergradients", spy_outer)
    made = condense(_config(mem), tmp_path / "mem", CPU, cache_root=cache_root, progress=False, memory=mem)
    assert made.labels.tolist() == [2, 3]  # the artifact holds only the classes condensed
    assert seen and len(grads) == 2
    for x, y in seen:
        assert x.shape[0] == 6 and y.tolist() == [2, 3, 0, 0, 1, 1]
        assert torch.equal(x[2:], mem.x)  # the memory is never updated
    assert all(g.shape == (2, 1, 8, 8) for g in grads)  # the update touches only the learned images
    assert made.meta["config"]["expert"]["memory"] == mem.fingerprint()


def test_the_memory_shapes_experts_and_images(cache_root: Path, tmp_path: Path) -> None:
    plain = condense(_config(None), tmp_path / "plain", CPU, cache_root=cache_root, progress=False)
    a = condense(
        _config(_memory(0)), tmp_path / "a", CPU, cache_root=cache_root, progress=False, memory=_memory(0)
    )
    again = condense(
        _config(_memory(0)), tmp_path / "again", CPU, cache_root=cache_root, progress=False, memory=_memory(0)
    )
    b = condense(
        _config(_memory(1)), tmp_path / "b", CPU, cache_root=cache_root, progress=False, memory=_memory(1)
    )
    assert torch.equal(a.images, again.images)  # same memory, same bytes
    assert not torch.equal(a.images, plain.images) and not torch.equal(a.images, b.images)
    paths = [store_path(cache_root, _config(m).expert) for m in (None, _memory(0), _memory(1))]
    assert len(set(paths)) == 3  # one expert store per memory
    # same expert seeds, so only the memory in their training data can make the trajectories differ
    last = [TrajectoryStore.open(p).load_epochs(0, [4]) for p in paths]
    assert not torch.equal(last[0], last[1]) and not torch.equal(last[1], last[2])


def test_a_conditioned_config_without_its_memory_is_refused_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(SatmError, match="pass its images"):
        condense(_config(_memory(0)), tmp_path / "x", CPU, cache_root=tmp_path / "c", progress=False)
    with pytest.raises(SatmError, match="fingerprint"):
        condense(
            _config(_memory(0)),
            tmp_path / "x",
            CPU,
            cache_root=tmp_path / "c",
            progress=False,
            memory=_memory(1),
        )
    assert not (tmp_path / "c" / "experts").exists()


def test_image_lr_scaled_by_the_images_the_student_trains_on(cache_root: Path, tmp_path: Path) -> None:
    """`lr_img_scale: images`: the first outer step (zero momentum) moves the images by exactly
    (learned + memory images) / (ipc x dataset classes) of the unscaled step: here (2 + 4) / 10."""
    from satm_cl.condense.api import starting_set

    mem = _memory(0)
    plain_cfg = replace(_config(mem), iterations=1, eval_every=0)
    scaled_cfg = replace(plain_cfg, lr_img_scale="images")
    start = starting_set(plain_cfg, tmp_path / "start").images
    plain = condense(plain_cfg, tmp_path / "plain", CPU, cache_root=cache_root, progress=False, memory=mem)
    scaled = condense(scaled_cfg, tmp_path / "scaled", CPU, cache_root=cache_root, progress=False, memory=mem)
    step_plain, step_scaled = plain.images - start, scaled.images - start
    assert step_plain.abs().max() > 0
    torch.testing.assert_close(step_scaled, 0.6 * step_plain, rtol=1e-4, atol=1e-6)
    assert scaled.meta["config"]["lr_img_scale"] == "images"
    assert "lr_img_scale" not in plain.meta["config"]  # the default leaves old configs' dict form unchanged
    with pytest.raises(SatmError, match="lr_img_scale"):
        replace(plain_cfg, lr_img_scale="pixels")
