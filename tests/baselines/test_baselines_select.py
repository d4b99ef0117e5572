"""Real-subset baselines: exact per-class picks, determinism, the model-input space, and the artifact."""

from __future__ import annotations

import dataclasses
from functools import cache, lru_cache
from pathlib import Path

import pytest
import torch

import satm_cl.baselines as baselines
from satm_cl.baselines import (
    FULL_IPC,
    create_baseline,
    herding_order,
    kcenter_order,
    list_baselines,
    preset_for,
)
from satm_cl.data import Preprocessor, create_dataset
from satm_cl.errors import SatmError
from satm_cl.synthetic import SyntheticSet, load_synthetic

SUBSETS = ("random", "herding", "kcenter")
IPC = 3


@cache
def _baseline(name: str, ipc: int, seed: int) -> SyntheticSet:
    return create_baseline(name, "digits", ipc, seed=seed)


@lru_cache(maxsize=1)
def _train() -> tuple[torch.Tensor, torch.Tensor]:
    cfg, _ = preset_for("digits", IPC)
    splits = create_dataset("digits", val_fraction=cfg.expert.val_fraction)
    return splits.train.x, splits.train.y


def test_registry_lists_all_selectors() -> None:
    assert list_baselines() == ["full", "herding", "kcenter", "random"]
    with pytest.raises(SatmError, match="unknown baseline 'nope'; valid: full, herding, kcenter, random"):
        create_baseline("nope", "digits", 1)


@pytest.mark.parametrize("name", SUBSETS)
def test_exactly_ipc_per_class_in_class_order(name: str) -> None:
    syn = _baseline(name, IPC, 0)
    assert syn.images.shape == (10 * IPC, 1, 8, 8)
    assert torch.equal(syn.labels, torch.arange(10).repeat_interleave(IPC))
    idx = torch.tensor(syn.meta["train_indices"])
    train_x, train_y = _train()
    assert torch.equal(train_y[idx], syn.labels)  # labels are the picked images' true labels
    assert idx.unique().numel() == idx.numel()  # distinct images
    cfg, preset = preset_for("digits", IPC)
    prep = Preprocessor.fit(train_x, syn.meta["mean"], syn.meta["std"], zca=cfg.expert.zca)
    torch.testing.assert_close(syn.images, prep.transform(train_x[idx]))  # the condensed sets' space
    assert syn.lr == pytest.approx(cfg.lr_init)
    assert syn.meta["method"] == name and syn.meta["ipc"] == IPC and syn.meta["config"]["preset"] == preset
    assert syn.meta["arch"] == cfg.expert.arch and syn.meta["arch_kwargs"] == cfg.expert.arch_kwargs


@pytest.mark.parametrize("name", SUBSETS)
def test_deterministic_per_seed(name: str) -> None:
    again = create_baseline(name, "digits", IPC, seed=0)
    assert torch.equal(again.images, _baseline(name, IPC, 0).images)
    assert again.meta["train_indices"] == _baseline(name, IPC, 0).meta["train_indices"]
    assert _baseline(name, IPC, 1).meta["train_indices"] != _baseline(name, IPC, 0).meta["train_indices"]


def test_feature_selectors_differ_from_random() -> None:
    random_picks = _baseline("random", IPC, 0).meta["train_indices"]
    assert _baseline("herding", IPC, 0).meta["train_indices"] != random_picks
    assert _baseline("kcenter", IPC, 0).meta["train_indices"] != random_picks


def test_full_is_the_whole_train_split() -> None:
    syn = create_baseline("full", "digits", None)
    train_x, train_y = _train()
    assert syn.images.shape[0] == train_x.shape[0] and syn.meta["ipc"] == FULL_IPC
    assert torch.equal(syn.labels, train_y.sort(stable=True).values)
    assert torch.equal(torch.bincount(syn.labels), torch.bincount(train_y))


@pytest.mark.parametrize("name", [*SUBSETS, "full"])
def test_artifact_round_trip(name: str, tmp_path: Path) -> None:
    syn = create_baseline(name, "digits", 1) if name == "full" else _baseline(name, IPC, 0)
    loaded = load_synthetic(syn.save(tmp_path / name))
    assert torch.equal(loaded.images, syn.images) and torch.equal(loaded.labels, syn.labels)
    assert loaded.lr == pytest.approx(syn.lr) and loaded.meta["method"] == name
    assert loaded.meta["config"]["selector"] == name


def test_zca_preset_gives_zca_space(monkeypatch: pytest.MonkeyPatch) -> None:
    def zca_preset(dataset: str, ipc: int | None) -> tuple[object, str]:
        cfg, name = preset_for(dataset, ipc)
        return dataclasses.replace(cfg, expert=dataclasses.replace(cfg.expert, zca=True)), name

    monkeypatch.setattr(baselines, "preset_for", zca_preset)
    syn = create_baseline("random", "digits", 2)
    assert set(syn.zca_state) == {"zca_mean", "zca_matrix"}
    train_x, _ = _train()
    picked = train_x[torch.tensor(syn.meta["train_indices"])]
    torch.testing.assert_close(syn.preprocessor().transform(picked), syn.images, atol=1e-4, rtol=1e-4)


def test_too_many_per_class_and_bad_ipc() -> None:
    with pytest.raises(SatmError, match="fewer than ipc 1000"):
        create_baseline("random", "digits", 1000)
    with pytest.raises(SatmError, match="needs ipc >= 1"):
        create_baseline("herding", "digits", 0)


def test_herding_tracks_the_mean() -> None:
    feats = torch.tensor([[0.0], [1.0], [3.0], [4.0]])  # mean 2
    order = herding_order(feats, 4)
    assert sorted(order.tolist()) == [0, 1, 2, 3]
    assert order[0].item() in (1, 2)  # the first pick is nearest the mean
    assert feats[order[:2]].mean().item() == pytest.approx(2.0)  # two picks already balance at the mean


def test_kcenter_spreads_out() -> None:
    feats = torch.tensor([[0.0], [1.0], [1.2], [10.0]])  # mean 3.05 -> nearest is 1.2
    assert kcenter_order(feats, 3).tolist() == [2, 3, 0]
    dup = torch.zeros(4, 2)  # identical features: picks stay distinct
    assert sorted(kcenter_order(dup, 4).tolist()) == [0, 1, 2, 3]
