"""Mid-training checkpoints: a training stopped and started again ends with the uninterrupted bytes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from satm_cl import training
from satm_cl.errors import SatmError
from satm_cl.models import create_model
from satm_cl.models.stacked import stack_convnets
from satm_cl.seeding import make_generator
from satm_cl.train_state import Position, TrainCheckpoint, discard, load_state, save_state
from satm_cl.training import TrainConfig, train_model

# 4 epochs of 3 batches (the last one short), LR decay after epoch 2, DSA drawing from the generators
CFG = TrainConfig(epochs=4, lr=0.05, batch_size=8, dsa="color_crop_flip_scale_rotate", decay_at=0.5)


class Killed(Exception):
    """Stands for the process being killed right after a checkpoint was written."""


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(20, 1, 8, 8, generator=gen), torch.arange(10).repeat(2)


def _model(stacked: bool) -> torch.nn.Module:
    nets = [create_model("convnet", 1, 10, (8, 8), seed=7 + r, width=8, depth=2) for r in range(2)]
    if not stacked:
        return nets[0]
    net = stack_convnets(nets)
    assert net is not None
    return net


def _gens(stacked: bool) -> torch.Generator | list[torch.Generator]:
    gens = [make_generator(3 + r, "train") for r in range(2)]
    return gens if stacked else gens[0]


def _train(stacked: bool, ck: TrainCheckpoint | None = None) -> torch.nn.Module:
    x, y = _data()
    return train_model(_model(stacked), x, y, CFG, _gens(stacked), checkpoint=ck)


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("stacked", [False, True], ids=["one-run", "stacked"])
@pytest.mark.parametrize("kill_at", [2, 7], ids=["epoch1", "after-decay"])
def test_a_killed_training_resumes_to_the_uninterrupted_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stacked: bool, kill_at: int
) -> None:
    reference = _train(stacked)
    ck = TrainCheckpoint(tmp_path / "state.safetensors", ident="run A", every_s=0.0)  # save every batch
    saves: list[Position] = []

    def save_then_die(*args: object) -> None:
        save_state(*args)  # type: ignore[arg-type]
        saves.append(args[-1])  # type: ignore[arg-type]
        if len(saves) == kill_at:
            raise Killed

    monkeypatch.setattr(training, "save_state", save_then_die)
    with pytest.raises(Killed):
        _train(stacked, ck)
    monkeypatch.setattr(training, "save_state", save_state)
    stopped = saves[-1]
    assert not stopped.done and stopped.start < 20  # stopped inside an epoch, not at a boundary
    assert not _same(_model(stacked), reference)  # (the run below starts from scratch weights)
    resumed = _train(stacked, ck)
    assert _same(resumed, reference)
    # the finished training left its end: a rerun scores those weights without training again
    assert ck.path.is_file()
    again = _train(stacked, ck)
    assert _same(again, reference)
    discard(ck)
    assert not ck.path.exists()


def test_a_short_training_writes_nothing(tmp_path: Path) -> None:
    ck = TrainCheckpoint(tmp_path / "state.safetensors", ident="run A", every_s=3600.0)
    assert _same(_train(False, ck), _train(False))
    assert not ck.path.exists()


def test_another_trainings_state_is_not_resumed(tmp_path: Path) -> None:
    path = tmp_path / "state.safetensors"
    model, gen = _model(False), _gens(False)
    assert isinstance(gen, torch.Generator)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    save_state(TrainCheckpoint(path, "run A"), model, opt, [gen], Position(2, 8, (torch.arange(20),)))
    assert load_state(TrainCheckpoint(path, "run B"), model, opt, [gen]) is None
    pos = load_state(TrainCheckpoint(path, "run A"), model, opt, [gen])
    assert pos is not None and (pos.epoch, pos.start, pos.done) == (2, 8, False)
    assert torch.equal(pos.orders[0], torch.arange(20))


def test_a_state_that_does_not_fit_the_model_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "state.safetensors"
    small = create_model("convnet", 1, 10, (8, 8), seed=0, width=8, depth=2)
    gen = torch.Generator()
    save_state(TrainCheckpoint(path, "A"), small, torch.optim.SGD(small.parameters(), lr=0.1), [gen],
               Position(1, 0, (torch.arange(4),)))  # fmt: skip
    wide = create_model("convnet", 1, 10, (8, 8), seed=0, width=16, depth=2)
    with pytest.raises(SatmError, match="does not fit this model"):
        load_state(TrainCheckpoint(path, "A"), wide, torch.optim.SGD(wide.parameters(), lr=0.1), [gen])
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(SatmError, match="unreadable training checkpoint"):
        load_state(TrainCheckpoint(path, "A"), small, torch.optim.SGD(small.parameters(), lr=0.1), [gen])


def test_a_checkpoint_and_an_epoch_callback_are_refused_together(tmp_path: Path) -> None:
    x, y = _data()
    ck = TrainCheckpoint(tmp_path / "s.safetensors", "A")
    with pytest.raises(ValueError, match="callbacks"):
        train_model(_model(False), x, y, CFG, _gens(False), on_epoch=lambda e, m: None, checkpoint=ck)
