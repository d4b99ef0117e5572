"""satm-cl: Sharpness-Aware Trajectory Matching for dataset condensation, and its benchmarks.

The Python API in one import (each name is loaded on first use, so `import satm_cl` stays light):
`resolve_config` → `run_condensation` → `load_synthetic` / `run_evaluation(EvalRequest)` → `build_report`;
`resolve_device("auto")` picks CUDA when present. README.md's "Python API" section runs these end to end.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "resolve_config": "satm_cl.config",
    "CondenseConfig": "satm_cl.config",
    "ExpertConfig": "satm_cl.experts.config",
    "run_condensation": "satm_cl.condense.api",  # the subpackage satm_cl.condense owns that name
    "resolve_device": "satm_cl.device",
    "SyntheticSet": "satm_cl.synthetic",
    "load_synthetic": "satm_cl.synthetic",
    "EvalRequest": "satm_cl.evaluate.runner",
    "run_evaluation": "satm_cl.evaluate.runner",
    "read_records": "satm_cl.records",
    "build_report": "satm_cl.report",
    "SatmError": "satm_cl.errors",
}
_SOURCE_NAMES = {"run_condensation": "condense"}  # exported name -> its name in its module
__all__ = [
    "CondenseConfig", "EvalRequest", "ExpertConfig", "SatmError", "SyntheticSet", "__version__",
    "build_report", "load_synthetic", "read_records", "resolve_config", "resolve_device",
    "run_condensation", "run_evaluation",
]

if TYPE_CHECKING:
    from satm_cl.condense.api import condense as run_condensation
    from satm_cl.config import CondenseConfig, resolve_config
    from satm_cl.device import resolve_device
    from satm_cl.errors import SatmError
    from satm_cl.evaluate.runner import EvalRequest, run_evaluation
    from satm_cl.experts.config import ExpertConfig
    from satm_cl.records import read_records
    from satm_cl.report import build_report
    from satm_cl.synthetic import SyntheticSet, load_synthetic


def __getattr__(name: str) -> Any:
    """Load an exported name from its module on first use (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'satm_cl' has no attribute {name!r}")
    value = getattr(import_module(module), _SOURCE_NAMES.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
