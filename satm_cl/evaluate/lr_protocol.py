"""Evaluation learning-rate protocols: which SGD learning rate a freshly built model is trained with.

- `learned`: MTT's protocol: every architecture trains with the set's learned inner LR α (a real-subset
  baseline's α is its preset's `lr_init`). It measures the set together with an LR tuned for the ConvNet
  it was condensed with, which other architectures may not tolerate (VGG11 with instance norm diverges at
  α = 0.05 on digits: its classifier sees 512 max-pooled, instance-normalised features, so one SGD step at
  that LR moves the logits by tens of units; LeNet / AlexNet are slow at small α).
- `tuned`: per architecture, the LR with the best validation accuracy among LR_GRID (the same grid for
  every method and set), each candidate trained once (seed `derive_seed(base_seed, "lr-select")`, one
  seed for every arch and LR; the evaluation's epochs and DSA; one executor job each,
  `evaluate.runner.LrJob`) on the set and scored on the dataset's val split (carved from train, never the
  test split); ties go to the smaller LR. The
  choice and every candidate's val accuracy are stored in the records' `config.lr_selection`, and a rerun
  reuses a recorded choice. Each candidate's val accuracy is also appended to `<out>/lr_candidates.jsonl`
  the moment it finishes (`CandidateLog`), so an interrupted selection (a ResNet's five candidates on a
  whole train split take hours) resumes with only the unfinished candidates.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from satm_cl.errors import SatmError
from satm_cl.records import mend_torn_tail

LR_PROTOCOLS = ("learned", "tuned")
# Half-decade steps around the LRs MTT-style evaluations use (learned α is typically 0.005-0.05).
LR_GRID: tuple[float, ...] = (0.001, 0.003, 0.01, 0.03, 0.1)
SELECT_SPLIT = "val"
CANDIDATES_FILE = "lr_candidates.jsonl"


def expand_lr_protocols(option: str | Sequence[str]) -> tuple[str, ...]:
    """`learned`, `tuned` or `both` (or a list of them) as protocol names in LR_PROTOCOLS order."""
    names = [option] if isinstance(option, str) else list(option)
    out: set[str] = set()
    for name in names:
        if name == "both":
            out.update(LR_PROTOCOLS)
        elif name in LR_PROTOCOLS:
            out.add(name)
        else:
            raise SatmError(f"unknown LR protocol {name!r}; valid: {', '.join([*LR_PROTOCOLS, 'both'])}")
    if not out:
        raise SatmError(f"no LR protocol given; valid: {', '.join([*LR_PROTOCOLS, 'both'])}")
    return tuple(p for p in LR_PROTOCOLS if p in out)


def select_lr(
    score: Callable[[float], float], grid: Sequence[float] | None = None
) -> tuple[float, dict[str, float]]:
    """The grid LR (default LR_GRID) with the highest `score(lr)` (validation accuracy), ties to the
    smaller LR, and every candidate's score keyed by `repr(lr)` (JSON-able)."""
    grid = LR_GRID if grid is None else grid
    if not grid:
        raise SatmError("the LR grid is empty")
    scores = {repr(float(lr)): float(score(float(lr))) for lr in grid}
    best = max(grid, key=lambda lr: (scores[repr(float(lr))], -float(lr)))
    return float(best), scores


def lr_selection_config(
    chosen: float, scores: Mapping[str, float], seed: int, grid: Sequence[float] | None = None
) -> dict[str, Any]:
    """What a tuned record stores about its LR choice (`config.lr_selection`)."""
    grid = LR_GRID if grid is None else grid
    return {
        "grid": [float(v) for v in grid],
        "split": SELECT_SPLIT,
        "runs": 1,
        "seed": seed,
        "val_accuracy": dict(scores),
        "chosen": float(chosen),
        # the best LR is the grid's smallest or largest: the optimum may lie outside (say so in reports)
        "at_grid_edge": float(chosen) in (float(min(grid)), float(max(grid))),
    }


def recorded_choice(config: Mapping[str, Any], grid: Sequence[float] | None = None) -> dict[str, Any] | None:
    """A tuned record's `lr_selection` if it was made on this grid (default LR_GRID; so a rerun can reuse
    it), else None."""
    grid = LR_GRID if grid is None else grid
    selection = config.get("lr_selection")
    if not isinstance(selection, dict) or selection.get("grid") != [float(v) for v in grid]:
        return None
    if not isinstance(selection.get("chosen"), int | float):
        return None
    return dict(selection)


class CandidateLog:
    """Finished `tuned` candidates, one JSON line each (`<out>/lr_candidates.jsonl`): what identifies the
    training (the set's method / dataset / ipc, the evaluation's base seed, arch, its kwargs, epochs, lr and
    the selection seed) and its val accuracy. Lines are flushed and fsynced as written; a torn last line
    (a kill mid-append) is mended as in records files."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        mend_torn_tail(self.path)
        self._rows: dict[str, float] = {}
        if self.path.is_file():
            for lineno, line in enumerate(self.path.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    self._rows[self._id(row["key"])] = float(row["val_accuracy"])
                except (ValueError, KeyError, TypeError):
                    raise SatmError(f"{self.path}:{lineno}: not an LR candidate line") from None

    @staticmethod
    def _id(key: Mapping[str, Any]) -> str:
        return json.dumps(key, sort_keys=True)

    def get(self, key: Mapping[str, Any]) -> float | None:
        """The recorded val accuracy of the candidate `key`, or None if it has not finished."""
        return self._rows.get(self._id(key))

    def add(self, key: Mapping[str, Any], val_accuracy: float) -> None:
        """Append a finished candidate (a key already present is not written twice)."""
        ident = self._id(key)
        if ident in self._rows:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as fh:
            line = json.dumps({"key": dict(key), "val_accuracy": float(val_accuracy)}, sort_keys=True)
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self._rows[ident] = float(val_accuracy)
