"""Protocols: the retrain accuracy matrix, Avalanche Naive/LwF/EWC with replay, GDumb, determinism."""

from __future__ import annotations

import pytest
import torch
from _continual_fixtures import FakeSet
from avalanche.training import DER, ER_ACE, Naive
from torch import nn

from satm_cl.continual.buffers import CondensedBuffer, HerdingBuffer
from satm_cl.continual.protocols import (
    DER_ALPHA,
    DER_BETA,
    STRATEGIES,
    STRATEGY_BUILDERS,
    ContinualResult,
    _row,
    avalanche_buffer,
    average_incremental_accuracy,
    backward_transfer,
    feature_config,
    forgetting_from_matrix,
    retrain_protocol,
    strategy_protocol,
)
from satm_cl.continual.scenarios import Scenario, make_scenario
from satm_cl.data import DatasetSplits, Preprocessor
from satm_cl.errors import SatmError
from satm_cl.models import create_model
from satm_cl.training import TrainConfig, accuracy

TRAIN = TrainConfig(epochs=3, lr=0.05, dsa="color_crop_scale_rotate")


def _scenario(d: DatasetSplits, seed: int = 0) -> Scenario:
    return make_scenario(d, 5, seed, Preprocessor.fit(d.train.x, d.mean, d.std, zca=False))


def _model(seed: int) -> nn.Module:
    return create_model("convnet", 1, 10, 8, seed=seed % 2**31, width=16, depth=2, norm="instance")


def _check_shape(matrix: list[list[float]], averages: list[float]) -> None:
    assert [len(r) for r in matrix] == [1, 2, 3, 4, 5] and len(averages) == 5
    assert all(0.0 <= v <= 100.0 for r in matrix for v in r)


def test_forgetting_from_matrix() -> None:
    assert forgetting_from_matrix([[90.0]]) == 0.0
    assert forgetting_from_matrix([[90.0], [50.0, 80.0], [40.0, 60.0, 70.0]]) == pytest.approx((50 + 20) / 2)


def test_average_incremental_accuracy_and_bwt_by_hand() -> None:
    matrix = [[90.0], [50.0, 80.0], [40.0, 60.0, 70.0]]
    averages = [90.0, 65.0, 56.0]
    # AIA = (90 + 65 + 56) / 3 = 70.333...; BWT = ((40 - 90) + (60 - 80)) / 2 = -35
    assert average_incremental_accuracy(averages) == pytest.approx(211.0 / 3)
    assert backward_transfer(matrix) == pytest.approx(-35.0)
    assert backward_transfer([[90.0]]) == 0.0 and average_incremental_accuracy([]) == 0.0
    # a later step that improves an earlier experience gives positive transfer
    assert backward_transfer([[20.0], [50.0, 90.0]]) == pytest.approx(30.0)
    res = ContinualResult(matrix, averages, forgetting_from_matrix(matrix), 10)
    assert res.avg_incremental_accuracy == pytest.approx(211.0 / 3)
    assert res.bwt == pytest.approx(-res.forgetting)


def test_row_scores_each_experience_once_and_matches_scoring_the_union(digits: DatasetSplits) -> None:
    """The overall figure comes from per-experience hits: it equals scoring all seen classes at once."""
    scenario = _scenario(digits)
    model = _model(3)
    for step in (0, 2, 4):
        row, overall = _row(model, scenario, step)
        seen = [c for classes in scenario.step_classes[: step + 1] for c in classes]
        union = scenario.test_mask(seen)
        assert overall == accuracy(model, scenario.test_x[union], scenario.test_y[union])
        assert row == [accuracy(model, scenario.test_x[m], scenario.test_y[m])
                       for m in (scenario.test_mask(c) for c in scenario.step_classes[: step + 1])]
    # an untrained net scores the experiences differently: the comparison above is not of equal constants
    assert len(set(row)) > 1


def test_strategy_registry_covers_every_strategy() -> None:
    assert set(STRATEGY_BUILDERS.names()) == set(STRATEGIES) >= {"naive", "lwf", "ewc", "er_ace", "der"}


def test_retrain_matrix_shape_and_determinism(digits: DatasetSplits, make_fake: FakeSet) -> None:
    sc = _scenario(digits)
    runs = [retrain_protocol(sc, CondensedBuffer(make_fake()), _model, TRAIN, seed=0) for _ in range(2)]
    _check_shape(runs[0].matrix, runs[0].avg_accuracy)
    assert runs[0] == runs[1] and runs[0].mem_size == 10
    assert runs[0].forgetting == pytest.approx(forgetting_from_matrix(runs[0].matrix))


def test_retrain_with_avalanche_memories(digits: DatasetSplits) -> None:
    sc = _scenario(digits, seed=2)
    for name in ("reservoir", "av_herding"):
        buf = avalanche_buffer(name, 10)
        res = retrain_protocol(sc, buf, _model, TRAIN, seed=0, feature_cfg=feature_config(epochs=1))
        _check_shape(res.matrix, res.avg_accuracy)
        assert len(buf.buffer) == 10
    assert isinstance(buf, HerdingBuffer)


@pytest.mark.parametrize("strategy", ["naive", "lwf", "ewc", "er_ace", "der"])
def test_strategies_with_condensed_replay(strategy: str, digits: DatasetSplits, make_fake: FakeSet) -> None:
    sc = _scenario(digits)
    buf = CondensedBuffer(make_fake(), dsa="color_crop_scale_rotate")
    res = strategy_protocol(sc, buf, strategy, _model, seed=0, mem_size=10, epochs=1)
    _check_shape(res.matrix, res.avg_accuracy)
    assert len(buf.buffer) == 10 and sorted(buf.seen_classes) == list(range(10))
    assert res.forgetting == pytest.approx(forgetting_from_matrix(res.matrix), abs=1e-6)


@pytest.mark.parametrize("strategy", ["er_ace", "der"])
def test_buffer_strategies_use_the_substituted_memory(strategy: str, digits: DatasetSplits) -> None:
    sc = _scenario(digits)
    buf = avalanche_buffer("reservoir", 10)
    res = strategy_protocol(sc, buf, strategy, _model, seed=0, mem_size=10, epochs=1)
    _check_shape(res.matrix, res.avg_accuracy)
    assert len(buf.buffer) == 10  # the strategy filled our reservoir, not a buffer of its own


def test_er_ace_with_its_own_buffer_kind_is_avalanches_er_ace(
    digits: DatasetSplits, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Substituting a memory changes nothing else: given a buffer of the kind ER_ACE builds for itself
    (class-balanced, adaptive), our ER-ACE run is Avalanche's own ER_ACE run, bit for bit. (So its 0 % on the
    newest experience at short training is ER-ACE's, not the substitution's.)"""
    sc = _scenario(digits)

    def own(memory: object, model: nn.Module, common: dict, replay_batch: int) -> ER_ACE:
        return ER_ACE(mem_size=20, batch_size_mem=replay_batch, **common)  # keeps its own buffer

    ours = strategy_protocol(sc, avalanche_buffer("class_balanced", 20), "er_ace", _model, seed=0,
                             mem_size=20, epochs=1)
    monkeypatch.setitem(STRATEGY_BUILDERS._entries, "er_ace", own)
    theirs = strategy_protocol(sc, avalanche_buffer("class_balanced", 20), "er_ace", _model, seed=0,
                               mem_size=20, epochs=1)
    assert ours == theirs
    assert len({round(v, 3) for row in ours.matrix for v in row}) > 2  # a run that learned something


def test_der_with_its_own_buffer_kind_is_avalanches_der(
    digits: DatasetSplits, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same for DER: with a class-balanced memory wrapped in `LogitsBuffer` (logits at entry), our run
    is Avalanche's own DER with its `ClassBalancedBufferWithLogits`, bit for bit: same samples, same stored
    logits, same replay draws."""
    sc = _scenario(digits)

    def own(memory: object, model: nn.Module, common: dict, replay_batch: int) -> DER:
        return DER(mem_size=20, batch_size_mem=replay_batch, alpha=DER_ALPHA, beta=DER_BETA, **common)

    ours = strategy_protocol(sc, avalanche_buffer("class_balanced", 20), "der", _model, seed=0,
                             mem_size=20, epochs=1)
    monkeypatch.setitem(STRATEGY_BUILDERS._entries, "der", own)
    theirs = strategy_protocol(sc, avalanche_buffer("class_balanced", 20), "der", _model, seed=0,
                               mem_size=20, epochs=1)
    assert ours == theirs
    assert len({round(v, 3) for row in ours.matrix for v in row}) > 2


def test_reset_optimizer_clears_momentum_between_experiences(
    digits: DatasetSplits, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Avalanche keeps SGD momentum across experiences unless asked; `reset_optimizer` asks."""
    sc = _scenario(digits)
    states: list[int] = []
    real_train = Naive.train

    def spy(self: Naive, exp: object, *args: object, **kwargs: object) -> object:
        out = real_train(self, exp, *args, **kwargs)
        states.append(len(self.optimizer.state))  # parameters holding a momentum buffer after training
        return out

    monkeypatch.setattr(Naive, "train", spy)
    kept = strategy_protocol(sc, avalanche_buffer("reservoir", 10), "naive", _model, seed=0, mem_size=10,
                             epochs=1)
    reset = strategy_protocol(sc, avalanche_buffer("reservoir", 10), "naive", _model, seed=0, mem_size=10,
                              epochs=1, reset_optimizer=True)
    assert kept != reset and all(states)  # same seed: only the optimizer's carried state differs


def test_replay_batch_fixes_the_replayed_images_per_step(
    digits: DatasetSplits, monkeypatch: pytest.MonkeyPatch
) -> None:
    """By default ReplayPlugin replays min(memory, batch) with a partial batch ending each pass over the
    memory; `replay_batch` replays exactly that many at every step when it divides the memory size."""
    sc = _scenario(digits)
    replayed: list[int] = []
    real_forward = Naive.forward

    def spy(self: Naive) -> object:
        if self.is_training:
            replayed.append(int(self.mb_x.shape[0]))  # current + replayed images in this mini-batch
        return real_forward(self)

    monkeypatch.setattr(Naive, "forward", spy)
    runs = {}
    for batch in (None, 5):
        replayed.clear()
        runs[batch] = strategy_protocol(sc, avalanche_buffer("reservoir", 15), "naive", _model, seed=0,
                                        mem_size=15, epochs=1, batch_size=64, replay_batch=batch)
        runs[batch, "sizes"] = list(replayed)
    default, fixed = runs[None, "sizes"], runs[5, "sizes"]
    # past the first experience (no memory yet), a full current batch carries exactly 5 replayed images
    assert {n - 64 for n in fixed if n > 64} == {5}
    assert {n - 64 for n in default if n > 64} == {15}  # min(15 slots, 64): the whole memory each step
    assert runs[None] != runs[5]
    er = STRATEGY_BUILDERS.get("er_ace")(avalanche_buffer("reservoir", 15), _model(0), {"model": _model(0),
                                         "optimizer": None, "train_mb_size": 8}, 7)
    assert er.batch_size_mem == 7
    with pytest.raises(SatmError, match="replay_batch must be >= 1"):
        strategy_protocol(sc, avalanche_buffer("reservoir", 15), "naive", _model, seed=0, mem_size=15,
                          replay_batch=0)


def test_gdumb_and_determinism(digits: DatasetSplits) -> None:
    sc = _scenario(digits)
    a = strategy_protocol(sc, None, "naive", _model, seed=5, mem_size=10, epochs=1)
    b = strategy_protocol(sc, None, "naive", _model, seed=5, mem_size=10, epochs=1)
    _check_shape(a.matrix, a.avg_accuracy)
    assert a == b
    assert torch.get_num_threads() == 1
