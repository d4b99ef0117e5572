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
