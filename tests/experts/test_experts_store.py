"""Expert trajectories: store round trip, resume after an interruption, unreadable files."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from _tiny import tiny_config

from satm_cl.errors import SatmError
from satm_cl.experts.store import TrajectoryStore, store_path
from satm_cl.experts.train import train_experts

CPU = torch.device("cpu")


def _cfg(n: int = 2):  # type: ignore[no-untyped-def]
    return replace(tiny_config().expert, num_experts=n, epochs=3)


def test_store_round_trip(tmp_path: Path) -> None:
    store = train_experts(_cfg(), tmp_path, CPU, progress=False)
    assert store.path == store_path(tmp_path, _cfg())
    assert store.done() == [0, 1]
    rows = store.load_epochs(1, [0, 3])
    assert rows.shape == (2, store.manifest["numel"])
    assert not torch.equal(rows[0], rows[1])  # training moved the parameters
    acc = store.manifest["experts"]["0"]["accuracy"]
    assert len(acc["val"]) == 3 and len(acc["train"]) == len(acc["test"]) == 1  # test once, after training
    manifest = json.loads((store.path / "manifest.json").read_text())
    assert manifest["config"]["dataset"] == "digits" and "torch" in manifest["versions"]


def test_expert_grid_shows_one_tick_per_expert(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Experts run as grid jobs (--jobs) still show a progress bar: minutes pass before the first line."""
    from satm_cl.execution import ExecConfig

    train_experts(_cfg(2), tmp_path, CPU, progress=True, executor=ExecConfig())
    assert "2/2" in capsys.readouterr().err.replace("\r", "\n").splitlines()[-1]


def test_interrupted_run_resumes_to_identical_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    full = train_experts(_cfg(3), tmp_path / "a", CPU, progress=False)
    import satm_cl.experts.train as train_mod

    real = train_mod.train_model
    calls = {"n": 0}

    def dies_on_third(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_mod, "train_model", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        train_experts(_cfg(3), tmp_path / "b", CPU, progress=False)
    monkeypatch.setattr(train_mod, "train_model", real)
    part = TrajectoryStore.open(store_path(tmp_path / "b", _cfg(3)))
    assert part.done() == [0, 1]
    resumed = train_experts(_cfg(3), tmp_path / "b", CPU, progress=False)
    for i in range(3):
        assert full.file(i).read_bytes() == resumed.file(i).read_bytes()
    assert (full.path / "manifest.json").read_bytes() == (resumed.path / "manifest.json").read_bytes()


def test_corrupted_expert_file_is_retrained(tmp_path: Path) -> None:
    store = train_experts(_cfg(), tmp_path, CPU, progress=False)
    good = store.file(0).read_bytes()
    store.file(0).write_bytes(good[:100])  # a truncated file no longer matches its recorded hash
    assert store.done() == [1]
    again = train_experts(_cfg(), tmp_path, CPU, progress=False)
    assert again.file(0).read_bytes() == good


def test_unreadable_store_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(SatmError, match="no expert store"):
        TrajectoryStore.open(tmp_path / "missing")
    store = train_experts(_cfg(), tmp_path, CPU, progress=False)
    store.file(1).write_bytes(b"garbage")
    with pytest.raises(SatmError, match=r"expert_001\.safetensors"):
        store.load_epochs(1, [0])
    (store.path / "manifest.json").write_text("{")
    with pytest.raises(SatmError, match=r"manifest\.json"):
        TrajectoryStore.open(store.path)


def test_val_subset_is_bookkeeping_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """val_subset changes which images are scored per epoch, not the trajectories or the store's name;
    per epoch only the val subset is scored (one accuracy call), never the test split."""
    import satm_cl.experts.train as train_mod

    sizes: list[int] = []
    real = train_mod.accuracy

    def counting(model, x, y, *a, **k):  # type: ignore[no-untyped-def]
        sizes.append(int(x.shape[0]))
        return real(model, x, y, *a, **k)

    monkeypatch.setattr(train_mod, "accuracy", counting)
    small = train_experts(replace(_cfg(1), val_subset=50), tmp_path / "a", CPU, progress=False)
    assert sizes[:3] == [50, 50, 50]  # 3 epochs, the 50-image val subset each
    assert len(sizes) == 5  # then train (subset) and test once
    full = train_experts(replace(_cfg(1), val_subset=None), tmp_path / "b", CPU, progress=False)
    assert small.path.name == full.path.name
    assert small.file(0).read_bytes() == full.file(0).read_bytes()


def test_an_expert_another_process_trains_is_skipped_then_waited_for(tmp_path: Path) -> None:
    """Two processes needing one store split its experts: an expert whose lock is held elsewhere comes last,
    and is trained here only if the holder released it without finishing (it died)."""
    import fcntl

    from satm_cl.experts.train import claim_experts

    for finished_elsewhere in (True, False):
        store = train_experts(_cfg(3), tmp_path / str(finished_elsewhere), CPU, progress=False, indices=[])
        with (store.path / "expert_000.safetensors.lock").open("a") as other:
            fcntl.flock(other.fileno(), fcntl.LOCK_EX)  # another open file conflicts like another process
            claims = claim_experts(store, [0, 1, 2])
            assert [next(claims), next(claims)] == [1, 2]
            if finished_elsewhere:
                done = train_experts(_cfg(3), tmp_path / "elsewhere", CPU, progress=False, indices=[0])
                entry = json.loads((done.path / "manifest.json").read_text())["experts"]["0"]
                store.add(0, done.load_epochs(0, [0, 1, 2, 3]).reshape(4, -1), entry["accuracy"])
            fcntl.flock(other.fileno(), fcntl.LOCK_UN)
        assert list(claims) == ([] if finished_elsewhere else [0])


def test_two_processes_on_one_store_train_each_expert_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Concurrent `train_experts` calls on one store (two grid jobs whose memories share experts) train every
    expert exactly once between them; the store ends complete."""
    import threading

    import satm_cl.experts.train as train_mod

    real, trained = train_mod.train_one_expert, []

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        trained.append(kwargs.get("seed", args[-1]))
        return real(*args, **kwargs)

    monkeypatch.setattr(train_mod, "train_one_expert", counted)
    job = {"target": train_experts, "args": (_cfg(4), tmp_path, CPU), "kwargs": {"progress": False}}
    threads = [threading.Thread(**job) for _ in range(2)]  # type: ignore[arg-type]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(trained) == len(set(trained)) == 4
    assert TrajectoryStore.open(store_path(tmp_path, _cfg(4))).done() == [0, 1, 2, 3]


def test_the_bar_counts_experts_another_process_trained(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The bar ends at n/n and says how many came from another process, not short of its total."""
    import fcntl
    import threading

    elsewhere = train_experts(_cfg(3), tmp_path / "elsewhere", CPU, progress=False, indices=[0])
    store = train_experts(_cfg(3), tmp_path / "here", CPU, progress=False, indices=[])
    with (store.path / "expert_000.safetensors.lock").open("a") as other:
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        here = threading.Thread(target=train_experts, args=(_cfg(3), tmp_path / "here", CPU))
        here.start()
        while not store.file(2).exists():  # experts 1 and 2 are trained here meanwhile
            here.join(0.05)
        entry = json.loads((elsewhere.path / "manifest.json").read_text())["experts"]["0"]
        store.add(0, elsewhere.load_epochs(0, [0, 1, 2, 3]), entry["accuracy"])
        fcntl.flock(other.fileno(), fcntl.LOCK_UN)
    here.join()
    last = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert "3/3" in last and "1 trained by another process" in last, last


def test_two_grids_on_one_store_split_it_rather_than_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Grid jobs train one given expert each; a job whose expert another process holds trains a free one of
    its grid meanwhile, so two commands needing one store work side by side (before: one waited)."""
    import threading
    import time

    import satm_cl.experts.train as train_mod
    from satm_cl.execution import ExecConfig

    real, trained, active, most = train_mod.train_one_expert, [], [0], [0]
    lock = threading.Lock()

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        with lock:
            trained.append(args[-1])
            active[0] += 1
            most[0] = max(most[0], active[0])
        time.sleep(0.3)  # widen the window in which the other grid could train beside this one
        try:
            return real(*args, **kwargs)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(train_mod, "train_one_expert", counted)
    job = {"target": train_experts, "args": (_cfg(4), tmp_path, CPU),
           "kwargs": {"progress": False, "executor": ExecConfig()}}
    threads = [threading.Thread(**job) for _ in range(2)]  # type: ignore[arg-type]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(trained) == len(set(trained)) == 4 and most[0] == 2
    assert TrajectoryStore.open(store_path(tmp_path, _cfg(4))).done() == [0, 1, 2, 3]
