"""Replay memories: per-class contents as experiences arrive, balanced resizing, equal budgets."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from _continual_fixtures import FakeSet, fake_set

from satm_cl.continual.buffers import CondensedBuffer, LogitsBuffer, SubsetBuffer
from satm_cl.continual.protocols import AVALANCHE_MEMORIES, avalanche_buffer, memory_tensors
from satm_cl.continual.scenarios import Scenario, make_scenario
from satm_cl.data import DatasetSplits, Preprocessor
from satm_cl.errors import SatmError
from satm_cl.replay_memory import MemoryImages
from satm_cl.synthetic import SyntheticSet


def _scenario(d: DatasetSplits, seed: int = 0) -> Scenario:
    return make_scenario(d, 5, seed, Preprocessor.fit(d.train.x, d.mean, d.std, zca=False))


def _labels_and_tasks(buf: CondensedBuffer) -> tuple[list[int], list[int]]:
    data = buf.buffer.eval()
    return [int(data[i][1]) for i in range(len(data))], [int(data[i][2]) for i in range(len(data))]


@pytest.mark.parametrize("kind", [CondensedBuffer, SubsetBuffer])
def test_memory_revealed_per_experience(kind: type, digits: DatasetSplits, make_fake: FakeSet) -> None:
    syn = make_fake(ipc=2)
    buf = kind(syn, dsa="color_crop_scale_rotate")
    assert buf.max_size == 20 and len(buf.buffer) == 0
    sc = _scenario(digits)
    seen: list[int] = []
    for exp, classes in zip(sc.train_stream, sc.step_classes, strict=True):
        buf.post_adapt(None, exp)
        seen += classes
        labels, tasks = _labels_and_tasks(buf)
        assert Counter(labels) == dict.fromkeys(seen, 2)
        assert set(tasks) == {0}
        x, y = buf.tensors()
        for c in seen:  # the stored images are exactly the set's images of that class
            assert torch.equal(x[y == c], syn.images[syn.labels == c])
    assert buf.lr == pytest.approx(syn.lr)


def test_dsa_only_in_train_group(digits: DatasetSplits, make_fake: FakeSet) -> None:
    buf = CondensedBuffer(make_fake(), dsa="color_crop_scale_rotate")
    buf.add_classes(list(range(10)))
    x, _ = buf.tensors()
    train = torch.stack([buf.buffer[i][0] for i in range(10)])
    evald = torch.stack([buf.buffer.eval()[i][0] for i in range(10)])
    assert torch.equal(evald, x) and not torch.equal(train, x)


def test_condense_fn_called_per_experience(digits: DatasetSplits) -> None:
    calls: list[list[int]] = []
    held: list[list[int]] = []  # the classes of the memory each call was shown

    def condense_fn(classes: list[int], memory: MemoryImages | None = None) -> SyntheticSet:
        calls.append(classes)
        held.append([] if memory is None else memory.y.tolist())
        return fake_set(digits, ipc=1, classes=classes, lr=0.01 * len(calls))

    buf = CondensedBuffer(condense_fn, max_size=10)
    sc = _scenario(digits, seed=1)
    for exp in sc.train_stream:
        buf.post_adapt(None, exp)
    assert calls == [sorted(c) for c in sc.step_classes]
    # each call sees the memory of exactly the experiences before it, one image per class at IPC 1
    seen = [sorted(c for step in sc.step_classes[:k] for c in step) for k in range(len(calls))]
    assert [sorted(h) for h in held] == seen
    assert sorted(buf.seen_classes) == list(range(10)) and len(buf.buffer) == 10
    assert buf.lr == pytest.approx(0.03)
    with pytest.raises(SatmError, match="max_size"):
        CondensedBuffer(condense_fn)


def test_resize_keeps_a_balanced_subset(make_fake: FakeSet) -> None:
    buf = CondensedBuffer(make_fake(ipc=3))
    buf.add_classes([4, 2, 7])
    buf.resize(None, 7)
    _, y = buf.tensors()
    assert Counter(y.tolist()) == {4: 3, 2: 2, 7: 2}
    buf.resize(None, 30)
    assert len(buf.buffer) == 9


def test_equal_budgets_across_buffers(digits: DatasetSplits, make_fake: FakeSet) -> None:
    mem = 10
    buffers = {name: avalanche_buffer(name, mem) for name in AVALANCHE_MEMORIES if name != "av_herding"}
    buffers["satm"] = CondensedBuffer(make_fake(), mem)
    buffers["random"] = SubsetBuffer(make_fake(offset=3), mem)
    assert {b.max_size for b in buffers.values()} == {mem}
    for exp in _scenario(digits).train_stream:
        for b in buffers.values():
            b.post_adapt(None, exp)
    for name, b in buffers.items():
        x, y = memory_tensors(b)
        assert len(y) == mem and x.shape[1:] == (1, 8, 8), name
    for name in ("satm", "random", "class_balanced", "gdumb"):
        assert Counter(memory_tensors(buffers[name])[1].tolist()) == dict.fromkeys(range(10), 1), name


def test_truncated_herding_keeps_avalanche_order() -> None:
    """The first `limit` picks equal Avalanche's full herding order; the rest are just appended."""
    from avalanche.training.storage_policy import HerdingSelectionStrategy

    from satm_cl.continual.buffers import TruncatedHerding

    feats = torch.randn(200, 16, generator=torch.Generator().manual_seed(0))
    net = torch.nn.Sequential(torch.nn.Identity())
    full = HerdingSelectionStrategy(net, "0").make_sorted_indices_from_features(feats)
    short = TruncatedHerding(net, "0", 12).make_sorted_indices_from_features(feats)
    assert short[:12] == list(full[:12])
    assert sorted(short) == list(range(200))


class _Agent:
    """What LogitsBuffer reads from a strategy: its model and device."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model, self.device = model, torch.device("cpu")


def test_logits_buffer_keeps_logits_from_entry(digits: DatasetSplits, make_fake: FakeSet) -> None:
    sc = _scenario(digits)
    inner = CondensedBuffer(make_fake(), dsa="color_crop_scale_rotate")
    buf = LogitsBuffer(inner)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    exps = list(sc.train_stream)
    buf.post_adapt(_Agent(model), exps[0])
    first = {int(buf.buffer.eval()[i][1]): buf.buffer.eval()[i][3].clone() for i in range(len(buf.buffer))}
    x0, _ = inner.tensors()
    assert torch.allclose(torch.stack(list(first.values())), model(x0).detach(), atol=1e-6)
    with torch.no_grad():
        model[1].weight.add_(1.0)  # the model moves on; stored logits must not
    buf.post_adapt(_Agent(model), exps[1])
    data = buf.buffer.eval()
    assert len(data) == 4 and all(len(data[i]) == 4 for i in range(4))
    for i in range(4):
        x, y, _t, logits = data[i]
        if int(y) in first:
            assert torch.equal(logits, first[int(y)])
        else:
            assert torch.allclose(logits, model(x.unsqueeze(0))[0].detach(), atol=1e-5)
    x_train, y_train, _, l_train = buf.buffer[0]  # DSA acts on the image only
    assert not torch.equal(x_train, data[0][0]) and torch.equal(l_train, data[0][3]) and y_train == data[0][1]
