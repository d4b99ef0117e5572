"""A long evaluation training (run or tuned-LR candidate) killed mid-way continues from its checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from satm_cl import training
from satm_cl.errors import SatmError
from satm_cl.evaluate import EvalRequest, run_evaluation
from satm_cl.evaluate.runner import CHECKPOINT_DIR
from satm_cl.execution import JobsFailed
from satm_cl.records import read_records
from satm_cl.train_state import Position, load_state, save_state

GRID = (0.01, 0.1)


def _request(out: Path, **kw: Any) -> EvalRequest:
    base: dict[str, Any] = {
        "synthetic": None,
        "baseline": "random",
        "dataset": "digits",
        "ipc": 1,
        "suites": ("in-domain",),
        "out": out,
        "runs": 1,
        "epochs": 4,  # 10 images: one batch per epoch
        "device": "cpu",
        "progress": False,
        "cache_dir": out / "cache",
        "lr_protocol": "tuned",
        "checkpoint_minutes": 1e-9,  # save after every batch
    }
    return EvalRequest(**{**base, **kw})


def _values(path: Path) -> list[tuple[Any, ...]]:
    return sorted((r["lr_protocol"], r["seed"], r["value"], r["config"]["lr"]) for r in read_records(path))


# each 4-epoch training saves 5 times (after every epoch's one batch, then its end): the 2nd save is the
# first LR candidate's epoch 2, the 10th the second candidate's end (killed before it was logged), the 12th
# the evaluation run's epoch 2
@pytest.mark.parametrize(
    ("kill_at", "resumed_at"),
    [(2, (2, False)), (10, (4, True)), (12, (2, False))],
    ids=["lr-candidate", "finished-not-logged", "evaluation-run"],
)
def test_a_killed_training_continues_from_its_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kill_at: int, resumed_at: tuple[int, bool]
) -> None:
    monkeypatch.setattr("satm_cl.evaluate.lr_protocol.LR_GRID", GRID)
    reference = _values(run_evaluation(_request(tmp_path / "ref", checkpoint_minutes=0)))
    assert not (tmp_path / "ref" / CHECKPOINT_DIR).exists()  # 0: never saved

    saves: list[Position] = []

    def save_then_die(*args: Any) -> None:
        save_state(*args)
        saves.append(args[-1])
        if len(saves) == kill_at:
            raise RuntimeError("killed")

    monkeypatch.setattr(training, "save_state", save_then_die)
    out = tmp_path / "run"
    with pytest.raises(JobsFailed, match="killed"):
        run_evaluation(_request(out))
    assert len(list((out / CHECKPOINT_DIR).glob("*.safetensors"))) == 1  # finished trainings cleaned up

    resumed: list[Position] = []

    def spy(*args: Any) -> Position | None:
        pos = load_state(*args)
        if pos is not None:
            resumed.append(pos)
        return pos

    monkeypatch.setattr(training, "save_state", save_state)
    monkeypatch.setattr(training, "load_state", spy)
    assert _values(run_evaluation(_request(out))) == reference
    assert [(p.epoch, p.done) for p in resumed] == [resumed_at]  # continued, not retrained
    assert list((out / CHECKPOINT_DIR).glob("*")) == []


def test_a_negative_checkpoint_interval_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SatmError, match="--checkpoint-every must be >= 0"):
        run_evaluation(_request(tmp_path, checkpoint_minutes=-1.0))
