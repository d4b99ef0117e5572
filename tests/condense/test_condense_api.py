"""`condense` with an executor: missing experts train as grid jobs, with the same bytes as in this process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from _tiny import tiny_config

from satm_cl.condense import condense
from satm_cl.execution import ExecConfig
from satm_cl.experts.store import TrajectoryStore, store_path

CPU = torch.device("cpu")


def test_experts_on_two_workers_give_the_same_store_and_set(tmp_path: Path) -> None:
    cfg = tiny_config(iterations=2)
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # in-process experts with the threads each worker job gets
    try:
        here = condense(cfg, tmp_path / "here", CPU, cache_root=tmp_path / "c1", progress=False)
    finally:
        torch.set_num_threads(before)
    grid = condense(cfg, tmp_path / "grid", CPU, cache_root=tmp_path / "c2", progress=False,
                    executor=ExecConfig(jobs=2, threads=1))
    a = TrajectoryStore.open(store_path(tmp_path / "c1", cfg.expert))
    b = TrajectoryStore.open(store_path(tmp_path / "c2", cfg.expert))
    assert b.done() == [0, 1]
    for i in b.done():
        assert a.file(i).read_bytes() == b.file(i).read_bytes()
    torch.testing.assert_close(here.images, grid.images, rtol=0, atol=0)


def test_a_precision_warning_reaches_api_callers(tmp_path: Path, monkeypatch: Any, caplog: Any) -> None:
    """Called from Python (no `say`), the 'bf16 is emulated here' warning is logged as a warning, not
    dropped at info level."""
    import satm_cl.condense.api as api

    monkeypatch.setattr(api, "precision_warning", lambda *a: "bf16 would be emulated here")
    with caplog.at_level("WARNING"):
        condense(tiny_config(iterations=1), tmp_path / "set", CPU, cache_root=tmp_path / "c", progress=False)
    assert "bf16 would be emulated here" in caplog.text


def test_bad_input_is_refused_before_any_expert_is_trained(tmp_path: Path) -> None:
    """A set larger than a class, or something that is not a config, is a one-line error before the (possibly
    hours of) expert training, with nothing written to the cache."""
    import pytest

    from satm_cl.errors import SatmError

    cache = tmp_path / "cache"
    with pytest.raises(SatmError, match=r"class 0 has \d+ train images, fewer than ipc=1000"):
        condense(tiny_config(ipc=1000), tmp_path / "big", "cpu", cache_root=cache, progress=False)
    with pytest.raises(SatmError, match="condense needs a CondenseConfig"):
        condense({"dataset": "digits"}, tmp_path / "dict", "cpu", cache_root=cache)  # type: ignore[arg-type]
    assert not (cache / "experts").exists() or not any((cache / "experts").iterdir())


def test_a_device_name_is_accepted_and_a_finished_set_reloads_with_resume(tmp_path: Path) -> None:
    cfg = tiny_config(iterations=1)
    first = condense(cfg, tmp_path / "set", "cpu", cache_root=tmp_path / "c", progress=False)
    log = (tmp_path / "set" / "log.jsonl").read_text()  # holds wall times: a redone run would rewrite them
    again = condense(cfg, tmp_path / "set", "cpu", cache_root=tmp_path / "c", progress=False, resume=True)
    assert torch.equal(first.images, again.images) and first.lr == again.lr
    assert (tmp_path / "set" / "log.jsonl").read_text() == log
