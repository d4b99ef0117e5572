"""Atomic writes: a write killed midway leaves a `.NAME.XXXX.tmp`; the next write of that file removes it."""

from __future__ import annotations

import fcntl
from pathlib import Path

import torch

from satm_cl.io import claimed, write_json, write_tensors


def test_a_save_removes_its_targets_stale_tmp_and_no_one_elses(tmp_path: Path) -> None:
    """The leftover of a killed checkpoint save goes with the next save of that checkpoint; the temporary
    files of other targets in the directory (other checkpoints saved concurrently) stay."""
    target = tmp_path / "bbaf985c409f1fbb.safetensors"
    stale = tmp_path / ".bbaf985c409f1fbb.safetensors.vmahly8h.tmp"
    others = [
        tmp_path / ".0123456789abcdef.safetensors.abcd1234.tmp",  # another checkpoint
        tmp_path / ".bbaf985c409f1fbb.safetensors.x.abcd1234.tmp",  # target `bbaf985c409f1fbb.safetensors.x`
    ]
    for p in (stale, *others):
        p.write_bytes(b"half a checkpoint")
    write_tensors(target, {"w": torch.ones(3)})
    assert target.exists() and not stale.exists()
    assert all(p.read_bytes() == b"half a checkpoint" for p in others)


def test_a_save_leaves_a_concurrent_writers_tmp_of_the_same_target(tmp_path: Path) -> None:
    """A temporary file its writer still holds (locked) is in progress, not stale."""
    target = tmp_path / "manifest.json"
    live = tmp_path / ".manifest.json.abcd1234.tmp"
    live.write_text("in progress")
    with live.open("rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        write_json(target, {"a": 1})
        assert live.read_text() == "in progress"
    write_json(target, {"a": 2})  # its writer gone (killed): now it is stale
    assert not live.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]


def test_claimed_says_whether_another_holder_has_the_lock(tmp_path: Path) -> None:
    """`claimed(wait=False)` never blocks: False while another open file holds `locked`'s lock, True after."""
    target = tmp_path / "expert_000.safetensors"
    with (tmp_path / "expert_000.safetensors.lock").open("a") as other:
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        with claimed(target, wait=False) as mine:
            assert mine is False
        fcntl.flock(other.fileno(), fcntl.LOCK_UN)
    with claimed(target, wait=False) as mine, claimed(target, wait=False) as again:
        assert mine is True and again is False  # the lock is per open file, even within one process
