"""Stream-condensed memories: nothing of a later experience is read; per-class-set caching; records."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from satm_cl.continual import ContinualRequest, experience_condenser, run_continual
from satm_cl.continual.scenarios import draw_class_order
from satm_cl.data import DatasetOptions, DatasetSplits, Split
from satm_cl.data.base import DATASETS
from satm_cl.errors import SatmError
from satm_cl.records import read_records
from satm_cl.replay_memory import MemoryImages
from satm_cl.synthetic import load_synthetic

# Tiny condensation: 1 expert x 2 epochs, 2 outer iterations, no validation.
TINY = {
    "iterations": 2,
    "syn_steps": 3,
    "truncate": 2,
    "expert_epochs": 1,
    "max_start_epoch": 1,
    "eval_every": 0,
    "expert": {"num_experts": 1, "epochs": 2},
}
Loader = Callable[[DatasetOptions], DatasetSplits]


def _poisoned(clean: Loader, classes: list[int], how: str) -> Loader:
    """`clean` with every image of `classes` (train, val, test) replaced by NaN or noise; labels and the
    dataset's normalisation constants unchanged."""

    def load(options: DatasetOptions) -> DatasetSplits:
        splits = clean(options)

        def poison(s: Split) -> Split:
            x = s.x.clone()
            mask = torch.isin(s.y, torch.tensor(classes))
            bad = torch.full_like(x[mask], float("nan")) if how == "nan" else torch.rand_like(x[mask])
            x[mask] = bad
            return Split(x, s.y)

        return replace(splits, train=poison(splits.train), val=poison(splits.val), test=poison(splits.test))

    return load


def _stream_bytes(root: Path, classes: list[int]) -> dict[str, bytes]:
    """Condense the experience holding `classes`; the artifact's tensors and every expert trajectory."""
    fn = experience_condenser(
        "satm", "digits", 1, root / "memories", cache_dir=root / "cache", overrides=TINY
    )
    syn = fn(classes)
    assert sorted(syn.labels.tolist()) == sorted(classes)
    files = {"synthetic": (next((root / "memories").iterdir()) / "synthetic.safetensors").read_bytes()}
    experts = sorted((root / "cache").rglob("*.safetensors"))
    assert experts
    files.update({p.name: p.read_bytes() for p in experts})
    return files


def test_stream_memory_never_reads_later_experiences(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    order = draw_class_order(10, 0)
    first, later = order[:2], order[2:]
    clean = _stream_bytes(tmp_path / "clean", first)
    monkeypatch.setitem(DATASETS._entries, "digits", _poisoned(DATASETS.get("digits"), later, "nan"))
    assert _stream_bytes(tmp_path / "poisoned", first) == clean  # later classes are NaN: never read
    monkeypatch.setitem(DATASETS._entries, "digits", _poisoned(DATASETS.get("digits"), first, "noise"))
    assert _stream_bytes(tmp_path / "control", first)["synthetic"] != clean["synthetic"]  # the test can fail


def test_stream_memory_through_the_runner_reuses_class_sets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = ContinualRequest(
        memories=("satm-stream", "reservoir"),
        orders=1,
        out=tmp_path / "retrain",
        device="cpu",
        epochs=1,
        progress=False,
        condense_overrides=TINY,
        cache_dir=tmp_path / "cache",
        memory_dir=tmp_path / "memories",
    )
    recs = read_records(run_continual(base))
    stream = tmp_path / "memories" / "stream"
    order = draw_class_order(10, 0)
    pairs = [sorted(order[i : i + 2]) for i in (0, 2, 4, 6, 8)]
    expected = {f"digits-ipc1-satm-classes{a}-{b}" for a, b in pairs}
    assert {p.name for p in stream.iterdir()} == expected
    mine = [r for r in recs if r["method"] == "satm-stream"]
    assert {r["config"]["memory_mode"] for r in mine} == {"stream"}
    assert mine[0]["config"]["condense_overrides"] == TINY
    assert len(mine) == 23 and all(0.0 <= r["value"] <= 100.0 for r in mine if r["metric"] == "avg_accuracy")

    def no_condensing(*args: object, **kw: object) -> None:
        raise AssertionError("a cached experience was condensed again")

    monkeypatch.setattr("satm_cl.condense.condense", no_condensing)
    other = replace(base, out=tmp_path / "naive", protocol="naive", memories=("satm-stream",))
    assert len(read_records(run_continual(other))) == 23  # same class sets, another protocol: all cached


def test_changed_settings_for_a_cached_experience_is_an_error(tmp_path: Path) -> None:
    fn = experience_condenser("satm", "digits", 1, tmp_path / "m", cache_dir=tmp_path / "c", overrides=TINY)
    fn([0, 1])
    again = experience_condenser(
        "satm", "digits", 1, tmp_path / "m", cache_dir=tmp_path / "c", overrides={**TINY, "iterations": 3}
    )
    with pytest.raises(SatmError, match="other settings"):
        again([1, 0])


ZCA = {**TINY, "expert": {**TINY["expert"], "zca": True}}


def _zca_stream_bytes(root: Path, classes: list[int], first: list[int]) -> bytes:
    """The artifact tensors of the experience holding `classes`, whitened with a ZCA fitted on `first`."""
    fn = experience_condenser(
        "satm", "digits", 1, root / "m", cache_dir=root / "c", overrides=ZCA, zca_classes=first
    )
    fn(classes)
    (out,) = (root / "m").iterdir()
    assert out.name.endswith("-zca" + "-".join(map(str, sorted(first))))
    return (out / "synthetic.safetensors").read_bytes()


def test_stream_zca_is_fitted_on_the_first_experience_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = draw_class_order(10, 0)
    first, second, later = order[:2], order[2:4], order[4:]
    clean = _zca_stream_bytes(tmp_path / "clean", second, first)
    loader = DATASETS.get("digits")
    monkeypatch.setitem(DATASETS._entries, "digits", _poisoned(loader, later, "nan"))
    assert _zca_stream_bytes(tmp_path / "poisoned", second, first) == clean  # later classes never read
    # the second experience's set depends on the first experience's images through the whitening alone
    monkeypatch.setitem(DATASETS._entries, "digits", _poisoned(loader, first, "noise"))
    assert _zca_stream_bytes(tmp_path / "control", second, first) != clean


def test_zca_stream_memories_share_the_first_experience_whitening(tmp_path: Path) -> None:
    from satm_cl.continual.runner import _setup

    req = ContinualRequest(
        memories=("satm-stream", "random", "satm"),
        orders=1,
        out=tmp_path / "out",
        device="cpu",
        epochs=1,
        progress=False,
        condense_overrides=ZCA,
        cache_dir=tmp_path / "cache",
        memory_dir=tmp_path / "memories",
    )
    ctx, _ = _setup(req)
    first = sorted(draw_class_order(10, 0)[:2])
    prep, _ = ctx.space("satm-stream", None, 0)
    fn = ctx.stream_condenser("satm-stream", 0)
    made = fn(first)
    assert torch.equal(made.zca_state["zca_matrix"], prep.zca_matrix)  # the scenario's space is the set's
    later = fn(sorted(draw_class_order(10, 0)[2:4]))
    assert torch.equal(later.zca_state["zca_matrix"], prep.zca_matrix)
    # the overrides are the run's preset: real-image stream memories train in the same first-experience space
    assert torch.equal(ctx.space("random", None, 0)[0].zca_matrix, prep.zca_matrix)
    other, _ = ctx.space("satm-stream", None, 1)  # another class order, another first experience
    assert sorted(draw_class_order(10, 1)[:2]) != first and not torch.equal(other.zca_matrix, prep.zca_matrix)


def test_a_zca_preset_whitens_stream_real_memories_on_the_first_experience(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from satm_cl.baselines import create_baseline
    from satm_cl.continual import runner
    from satm_cl.continual.runner import _setup, memory_config

    whitening = runner.condense_config

    def zca_preset(dataset: str, ipc: int, method: str = "satm", overrides: dict | None = None) -> object:
        """A preset that whitens, unless the overrides say whether to (as for a real ZCA preset)."""
        cfg = whitening(dataset, ipc, method, overrides)
        pinned = "zca" in ((overrides or {}).get("expert") or {})
        return cfg if pinned else replace(cfg, expert=replace(cfg.expert, zca=True))

    monkeypatch.setattr(runner, "condense_config", zca_preset)
    req = ContinualRequest(memories=("random", "reservoir", "herding"), orders=1, out=tmp_path, device="cpu")
    ctx, _ = _setup(req)
    stream = ctx.stream_prep(0)
    for memory in ("reservoir", "random"):
        assert memory_config(memory, req)["zca_fit"] == "first experience"
    prep, _ = ctx.space("reservoir", None, 0)
    assert torch.equal(prep.zca_matrix, stream.zca_matrix)
    subset = create_baseline("random", "digits", 1, seed=0)
    prep, moved = ctx.space("random", subset, 0)
    assert torch.equal(prep.zca_matrix, stream.zca_matrix)
    assert torch.allclose(prep.inverse(moved.images), subset.pixels(), atol=1e-4)  # the same real images
    assert "zca_fit" not in memory_config("herding", req)  # offline memories keep their own space
    # a run that pins a non-whitening config (e.g. the preset a committed result was made with) keeps every
    # memory out of the whitening, real buffers included
    pinned = replace(req, condense_overrides={"expert": {"zca": False}})
    ctx, _ = _setup(pinned)
    assert not ctx.cfg.expert.zca and not ctx.space("reservoir", None, 0)[0].zca
    assert all("zca_fit" not in memory_config(m, pinned) for m in ("random", "reservoir"))


def test_a_cached_offline_memory_with_other_settings_is_an_error(tmp_path: Path) -> None:
    from satm_cl.continual.runner import _setup

    req = ContinualRequest(
        memories=("satm",),
        orders=1,
        out=tmp_path / "out",
        device="cpu",
        progress=False,
        condense_overrides=TINY,
        cache_dir=tmp_path / "cache",
        memory_dir=tmp_path / "m",
    )
    made = _setup(req)[0].source("satm")
    assert _setup(req)[0].source("satm").images.equal(made.images)  # same settings: reused
    changed = replace(req, condense_overrides={**TINY, "iterations": 3})  # e.g. a preset that moved on
    with pytest.raises(SatmError, match="other settings"):
        _setup(changed)[0].source("satm")


def test_a_zca_stream_memory_runs_through_the_suite(tmp_path: Path) -> None:
    req = ContinualRequest(
        memories=("satm-stream", "reservoir"),
        orders=1,
        out=tmp_path / "out",
        device="cpu",
        epochs=1,
        progress=False,
        condense_overrides=ZCA,
        cache_dir=tmp_path / "cache",
        memory_dir=tmp_path / "memories",
    )
    recs = read_records(run_continual(req))
    first = "-".join(map(str, sorted(draw_class_order(10, 0)[:2])))
    names = [p.name for p in (tmp_path / "memories" / "stream").iterdir()]
    assert len(names) == 5 and all(n.endswith(f"-zca{first}") for n in names)
    fits = {r["method"]: r["config"].get("zca_fit") for r in recs}
    assert fits == {"satm-stream": "first experience", "reservoir": "first experience"}  # the run's preset
    assert len(recs) == 46


def _conditioned_bytes(root: Path, first: list[int], second: list[int]) -> bytes:
    """The second experience's artifact tensors, condensed conditioned on the first experience's set."""
    fn = experience_condenser(
        "satm", "digits", 1, root / "m", cache_dir=root / "c", overrides=TINY, conditioned=True
    )
    made = fn(first, None)
    fn(second, MemoryImages(made.images, made.labels))
    (out,) = [p for p in (root / "m").iterdir() if "-mem" in p.name]
    return (out / "synthetic.safetensors").read_bytes()


def test_conditioned_stream_memory_never_reads_later_experiences(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = draw_class_order(10, 0)
    first, second, later = order[:2], order[2:4], order[4:]
    clean = _conditioned_bytes(tmp_path / "clean", first, second)
    loader = DATASETS.get("digits")
    monkeypatch.setitem(DATASETS._entries, "digits", _poisoned(loader, later, "nan"))
    assert _conditioned_bytes(tmp_path / "poisoned", first, second) == clean  # later classes never read
    # control: the first experience reaches the second's set only through the memory it left, so changing
    # its data changes the second set (an unconditioned stream set of the second pair would not change)
    monkeypatch.setitem(DATASETS._entries, "digits", _poisoned(loader, first, "noise"))
    assert _conditioned_bytes(tmp_path / "control", first, second) != clean


def test_conditioned_stream_memory_through_the_runner(tmp_path: Path) -> None:
    req = ContinualRequest(
        memories=("satm-stream-mem", "satm-stream"),
        orders=1,
        out=tmp_path / "retrain",
        device="cpu",
        epochs=1,
        progress=False,
        condense_overrides=TINY,
        cache_dir=tmp_path / "cache",
        memory_dir=tmp_path / "memories",
    )
    recs = read_records(run_continual(req))
    order = draw_class_order(10, 0)
    names = {p.name for p in (tmp_path / "memories" / "stream").iterdir()}
    pairs = ["-".join(map(str, sorted(order[i : i + 2]))) for i in (0, 2, 4, 6, 8)]
    # the first experience has no memory yet, so both memories share its set; the others are conditioned
    assert {n for n in names if "-mem" not in n} == {f"digits-ipc1-satm-classes{p}" for p in pairs}
    conditioned = sorted(n.split("-mem")[0] for n in names if "-mem" in n)
    assert conditioned == sorted(f"digits-ipc1-satm-classes{p}" for p in pairs[1:])
    mine = [r for r in recs if r["method"] == "satm-stream-mem"]
    assert len(mine) == 23 and {r["config"]["memory_mode"] for r in mine} == {"stream"}
    assert {r["config"]["conditioned_on"] for r in mine} == {"memory so far"}
    assert all("conditioned_on" not in r["config"] for r in recs if r["method"] == "satm-stream")


def test_workers_reaching_the_same_stream_set_condense_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    import satm_cl.condense

    real = satm_cl.condense.condense
    calls: list[float] = []

    def slow_condense(*args: object, **kw: object) -> object:
        calls.append(time.perf_counter())
        time.sleep(0.5)  # both workers are inside the call at once unless the lock serialises them
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(satm_cl.condense, "condense", slow_condense)
    fn = experience_condenser("satm", "digits", 1, tmp_path / "m", cache_dir=tmp_path / "c", overrides=TINY)
    made: list[torch.Tensor] = []
    workers = [threading.Thread(target=lambda: made.append(fn([0, 1]).images)) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(calls) == 1 and len(made) == 2 and torch.equal(made[0], made[1])


def test_one_class_per_step_works_only_conditioned(tmp_path: Path) -> None:
    """With one class per experience a plain stream memory has nothing to match; the conditioned one starts
    from the first class's starting images and conditions every later class on the memory."""
    req = ContinualRequest(
        memories=("satm-stream-mem",),
        steps=10,
        orders=1,
        out=tmp_path / "out",
        device="cpu",
        epochs=1,
        progress=False,
        condense_overrides=TINY,
        cache_dir=tmp_path / "cache",
        memory_dir=tmp_path / "memories",
    )
    recs = read_records(run_continual(req))
    order = draw_class_order(10, 0)
    names = sorted(p.name for p in (tmp_path / "memories" / "stream").iterdir())
    assert [n for n in names if "-mem" not in n] == [f"digits-ipc1-satm-classes{order[0]}-start"]
    assert sorted(int(n.split("classes")[1].split("-")[0]) for n in names if "-mem" in n) == sorted(order[1:])
    start = load_synthetic(tmp_path / "memories" / "stream" / f"digits-ipc1-satm-classes{order[0]}-start")
    assert start.meta["selection"]["rule"] == "starting images: nothing to match"
    assert start.meta["iterations"] == 0
    assert start.labels.tolist() == [order[0]]
    assert {r["step"] for r in recs if r["metric"] == "avg_accuracy"} == set(range(1, 11))
    with pytest.raises(SatmError, match="at least 2 classes per experience"):
        run_continual(replace(req, memories=("satm-stream",), out=tmp_path / "plain"))


def test_real_first_memory_keeps_the_first_experience_real_and_conditions_on_it(tmp_path: Path) -> None:
    """`satm-stream-mem-real1`: the first pair's set is its starting images (no expert, no outer step) and the
    second pair is condensed against exactly those images (the memory fingerprint in its name)."""
    req = ContinualRequest(
        memories=("satm-stream-mem-real1",),
        orders=1,
        out=tmp_path / "out",
        device="cpu",
        epochs=1,
        progress=False,
        condense_overrides=TINY,
        cache_dir=tmp_path / "cache",
        memory_dir=tmp_path / "memories",
    )
    recs = read_records(run_continual(req))
    order = draw_class_order(10, 0)
    pairs = ["-".join(map(str, sorted(order[i : i + 2]))) for i in (0, 2, 4, 6, 8)]
    root = tmp_path / "memories" / "stream"
    names = sorted(p.name for p in root.iterdir())
    assert [n for n in names if "-mem" not in n] == [f"digits-ipc1-satm-classes{pairs[0]}-start"]
    start = load_synthetic(root / f"digits-ipc1-satm-classes{pairs[0]}-start")
    assert start.meta["iterations"] == 0
    assert start.meta["selection"]["rule"] == "starting images: first experience"
    assert sorted(start.labels.tolist()) == sorted(order[:2])
    fingerprint = MemoryImages(start.images, start.labels).fingerprint()
    assert f"digits-ipc1-satm-classes{pairs[1]}-mem{fingerprint}" in names
    assert sorted(n.split("-mem")[0] for n in names if "-mem" in n) == sorted(
        f"digits-ipc1-satm-classes{p}" for p in pairs[1:]
    )
    assert {r["config"]["first_experience"] for r in recs} == {"starting images (real)"}
    assert {r["config"]["conditioned_on"] for r in recs} == {"memory so far"}


def test_a_real_first_memory_must_be_conditioned() -> None:
    from satm_cl.continual.runner import STREAM_MEMORIES, StreamMemory

    assert all(spec.conditioned for spec in STREAM_MEMORIES.values() if spec.real_first)
    with pytest.raises(SatmError, match="only when conditioned"):
        StreamMemory("satm", real_first=True)
