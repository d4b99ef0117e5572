"""A digits condensation config small enough for unit tests."""

from __future__ import annotations

from dataclasses import replace

from satm_cl.config import CondenseConfig, resolve_config


def tiny_config(**overrides: object) -> CondenseConfig:
    """A digits config small enough for unit tests: width-16 ConvNet, 2 experts × 4 epochs."""
    method = str(overrides.pop("method", "satm"))
    base = resolve_config("digits", 1, method)
    expert = replace(
        base.expert, num_experts=2, epochs=4, arch_kwargs={"width": 16, "depth": 2, "norm": "instance"}
    )
    fields = {
        "iterations": 4,
        "syn_steps": 6,
        "max_start_epoch": 2,
        "expert_epochs": 2,
        "eval_every": 0,
        "eval_epochs": 5,
        "checkpoint_every": 2,
        "expert": expert,
    }
    if method == "satm":
        fields["truncate"] = 3
    fields.update(overrides)
    return replace(base, **fields)  # type: ignore[arg-type]
