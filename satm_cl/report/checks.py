"""Checks over continual records that flag runs whose metrics would mislead.

An experience a strategy did not learn by its step's end (ER-ACE after a few epochs; Naive + replay on digits,
whose predictions swing between old and new classes from epoch to epoch) scores near 0 % right after its
step, so its backward transfer and forgetting read as little forgotten. `unlearned_experiences` finds such
cells: just-learned accuracy below chance among the classes seen by then.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def unlearned_experiences(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """One line per (run setting, experience) whose accuracy right after its step is below chance.

    Chance at step k is 100 / (k × classes per step): guessing among the classes seen by then. A line lists
    the class orders (seeds) below it. Records without `config.classes_per_step` are skipped."""
    found: dict[tuple[Any, ...], list[tuple[Any, float]]] = {}
    for rec in records:
        cfg = rec.get("config") or {}
        per_step = cfg.get("classes_per_step")
        if (rec.get("stage") != "continual" or rec.get("metric") != "step_accuracy" or not per_step
                or rec.get("step") != rec.get("eval_step")):
            continue
        step, value = int(rec["step"]), float(rec["value"])
        if value < 100.0 / (step * int(per_step)):
            key = (cfg.get("protocol", "?"), rec.get("method"), rec.get("dataset"), rec.get("ipc"), step,
                   step * int(per_step))
            found.setdefault(key, []).append((rec.get("seed"), value))
    lines = []
    for key, hits in sorted(found.items(), key=lambda kv: str(kv[0])):
        protocol, method, dataset, ipc, step, seen = key
        orders = ", ".join(str(seed) for seed, _ in hits)
        values = " / ".join(f"{value:.1f}" for _, value in hits)
        lines.append(f"{protocol} {method} {dataset} ipc {ipc}: experience {step} scored {values} % right "
                     f"after training on it (class order {orders}; chance among the {seen} classes seen: "
                     f"{100.0 / seen:.1f} %)")
    return lines
