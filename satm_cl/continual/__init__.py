"""Class-incremental learning with condensed memories in Avalanche (the only package importing avalanche).

`run_continual(ContinualRequest(...))` runs the suite; `CondensedBuffer`, `SubsetBuffer`, `LogitsBuffer`,
`make_scenario`, `retrain_protocol` and `strategy_protocol` (strategies in `STRATEGY_BUILDERS`) are the
building blocks (loaded lazily: avalanche is slow). `MEMORY_MODES`: which memories are offline, which stream.
"""

from __future__ import annotations

import importlib
from typing import Any

from satm_cl.continual.presets import PAPER_PRESETS, PRESETS, condense_config
from satm_cl.continual.runner import (
    MEMORY_MODES,
    MEMORY_NAMES,
    PROTOCOL_NAMES,
    ContinualRequest,
    experience_condenser,
    preset_request,
    run_continual,
)

_LAZY = {
    "CondensedBuffer": "buffers", "SubsetBuffer": "buffers", "HerdingBuffer": "buffers",
    "DSATransform": "buffers", "LogitsBuffer": "buffers", "memory_tensors": "buffers",
    "STRATEGY_BUILDERS": "protocols", "make_scenario": "scenarios", "Scenario": "scenarios",
    "tensor_dataset": "scenarios", "draw_class_order": "scenarios", "ContinualResult": "protocols",
    "retrain_protocol": "protocols", "strategy_protocol": "protocols", "avalanche_buffer": "protocols",
}

__all__ = [
    "MEMORY_MODES",
    "MEMORY_NAMES",
    "PAPER_PRESETS",
    "PRESETS",
    "PROTOCOL_NAMES",
    "ContinualRequest",
    "condense_config",
    "experience_condenser",
    "preset_request",
    "run_continual",
    *sorted(_LAZY),
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"satm_cl.continual.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'satm_cl.continual' has no attribute {name!r}")
