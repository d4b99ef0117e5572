"""Mid-training checkpoints for `training.train_model`, so a long training survives being stopped.

A ResNet18 trained on Fashion-MNIST's whole train split takes about 2 h of one CPU thread per 2 epochs: a
session, a job scheduler or a laptop lid that ends it loses all of it. With a `TrainCheckpoint` the loop
saves everything its future depends on every `every_s` seconds (at a batch boundary): model tensors
(parameters and buffers), SGD momentum buffers and LRs, each run's generator state and epoch order, and
where it stands (epoch, next batch). A rerun of the same training finds the file and continues; on the
same machine and thread count the result is bit for bit the uninterrupted one. A finished long training
leaves a `done` state (its final weights), so a kill between training and recording costs only the scoring;
the caller deletes the file once the result is recorded (`discard`). Safetensors, written atomically.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

from satm_cl.errors import SatmError
from satm_cl.io import write_tensors

log = logging.getLogger(__name__)

FORMAT = "satm-cl train state 1"


@dataclass(frozen=True)
class TrainCheckpoint:
    """Where one training keeps its state, what identifies that training, and how often it saves."""

    path: Path
    ident: str  # a different training's file at `path` is not resumed (it is replaced)
    every_s: float = 600.0


@dataclass(frozen=True)
class Position:
    """Where a training stands: training `epoch` (1-based), the next batch starting at `start` of each
    run's epoch `orders`; `done` once every epoch has run."""

    epoch: int
    start: int
    orders: tuple[torch.Tensor, ...]
    done: bool = False


def save_state(
    ck: TrainCheckpoint,
    model: nn.Module,
    opt: torch.optim.SGD,
    gens: Sequence[torch.Generator],
    pos: Position,
) -> None:
    """Write the training's whole state to `ck.path` (atomically: a kill mid-write keeps the old file)."""
    tensors = {f"model/{k}": v for k, v in model.state_dict().items()}
    opt_state = opt.state_dict()
    for idx, entry in opt_state["state"].items():
        if entry.get("momentum_buffer") is not None:
            tensors[f"opt/{idx}"] = entry["momentum_buffer"]
    for r, (g, order) in enumerate(zip(gens, pos.orders, strict=True)):
        tensors[f"gen/{r}"] = g.get_state()
        tensors[f"order/{r}"] = order
    meta = {
        "format": FORMAT,
        "ident": ck.ident,
        "position": json.dumps({"epoch": pos.epoch, "start": pos.start, "done": pos.done}),
        "lrs": json.dumps([group["lr"] for group in opt_state["param_groups"]]),
    }
    write_tensors(ck.path, tensors, meta)


def load_state(
    ck: TrainCheckpoint, model: nn.Module, opt: torch.optim.SGD, gens: Sequence[torch.Generator]
) -> Position | None:
    """Restore `model`, `opt` and `gens` from `ck.path` and return where to continue; None (nothing
    changed) if there is no file or it belongs to another training."""
    if not ck.path.is_file():
        return None
    try:
        with safe_open(str(ck.path), framework="pt") as fh:
            meta = fh.metadata() or {}
            if meta.get("format") != FORMAT or meta.get("ident") != ck.ident:
                log.warning("%s is another training's state; starting this one afresh", ck.path)
                return None
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (safe_open has no iterator)
        where = json.loads(meta["position"])
        lrs = json.loads(meta["lrs"])
    except (SafetensorError, OSError, KeyError, ValueError) as exc:
        raise SatmError(
            f"unreadable training checkpoint {ck.path} ({exc}); delete it to start afresh"
        ) from None
    device = next(iter(model.parameters())).device
    state = {k[len("model/") :]: v.to(device) for k, v in tensors.items() if k.startswith("model/")}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError:
        raise SatmError(f"training checkpoint {ck.path} does not fit this model; delete it") from None
    opt_state = opt.state_dict()
    opt_state["state"] = {
        int(k[len("opt/") :]): {"momentum_buffer": v.to(device)}
        for k, v in tensors.items()
        if k.startswith("opt/")
    }
    for group, lr in zip(opt_state["param_groups"], lrs, strict=True):
        group["lr"] = lr
    opt.load_state_dict(opt_state)
    if len(gens) != sum(k.startswith("gen/") for k in tensors):
        raise SatmError(f"training checkpoint {ck.path} holds another number of runs; delete it")
    for r, g in enumerate(gens):
        g.set_state(tensors[f"gen/{r}"])
    orders = tuple(tensors[f"order/{r}"] for r in range(len(gens)))
    log.info("resuming %s at epoch %d, sample %d", ck.path, where["epoch"], where["start"])
    return Position(int(where["epoch"]), int(where["start"]), orders, bool(where["done"]))


def discard(ck: TrainCheckpoint | None) -> None:
    """Delete a training's state once its result is safely recorded (no error if there is none)."""
    if ck is not None:
        ck.path.unlink(missing_ok=True)
