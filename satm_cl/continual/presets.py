"""Continual-suite presets (dataset, steps, IPC) and the condense config each memory's settings come from.

Paper settings: CIFAR-10 in 5 steps at 50 IPC, Tiny ImageNet in 10 and 20 steps at 3 IPC. CPU settings:
digits in 5 steps at IPC 1 and 5, Fashion-MNIST in 5 steps at IPC 10. An IPC without a condensation preset
borrows the nearest preset of its dataset (as the real-subset baselines do), with the IPC overridden.
"""

from __future__ import annotations

from typing import Any

from satm_cl.baselines.presets import preset_for
from satm_cl.config import CondenseConfig, resolve_config

# name -> ContinualRequest keyword arguments
PRESETS: dict[str, dict[str, Any]] = {
    "cifar10-5steps-ipc50": {"dataset": "cifar10", "steps": 5, "ipc": 50},
    "tinyimagenet-10steps-ipc3": {"dataset": "tinyimagenet", "steps": 10, "ipc": 3},
    "tinyimagenet-20steps-ipc3": {"dataset": "tinyimagenet", "steps": 20, "ipc": 3},
    "digits-5steps-ipc1": {"dataset": "digits", "steps": 5, "ipc": 1},
    "digits-5steps-ipc5": {"dataset": "digits", "steps": 5, "ipc": 5},
    "fashion-mnist-5steps-ipc10": {"dataset": "fashion-mnist", "steps": 5, "ipc": 10},
}
PAPER_PRESETS = ("cifar10-5steps-ipc50", "tinyimagenet-10steps-ipc3", "tinyimagenet-20steps-ipc3")


def condense_config(
    dataset: str, ipc: int, method: str = "satm", overrides: dict[str, Any] | None = None
) -> CondenseConfig:
    """The resolved condense config for (dataset, ipc, method), borrowing the nearest preset when needed;
    `overrides` (CondenseConfig fields, `expert` as a dict) win over the preset."""
    _, preset = preset_for(dataset, ipc)
    extra = dict(overrides or {})
    if preset == "defaults":
        return resolve_config(dataset, ipc, method, overrides=extra)
    return resolve_config(dataset, ipc, method, preset=preset, overrides={**extra, "ipc": ipc})
