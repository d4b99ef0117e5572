"""Hand-written records and artifacts shared by the report tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def rec(stage: str, method: str, value: float | None, *, dataset: str = "cifar10", ipc: int | None = 10,
        arch: str = "convnet", seed: int = 0, metric: str = "test_accuracy", **extra: Any) -> dict[str, Any]:
    """One tidy record with the required keys."""
    return {"stage": stage, "method": method, "dataset": dataset, "ipc": ipc, "arch": arch, "seed": seed,
            "metric": metric, "value": value, "config": extra.pop("config", {}), **extra}


def in_domain_records() -> list[dict[str, Any]]:
    """satm on cifar10 IPC 10: 80, 82, 84 -> 82.0 ± 2.0; mtt 60/62 at IPC 10 and one run at IPC 1."""
    out = [rec("in-domain", "satm", v, seed=s) for s, v in enumerate((80.0, 82.0, 84.0))]
    out += [rec("in-domain", "mtt", v, seed=s) for s, v in enumerate((60.0, 62.0))]
    out += [rec("in-domain", "mtt", 45.5, ipc=1)]
    out += [rec("in-domain", "satm", v, ipc=1, seed=s) for s, v in enumerate((47.0, 49.0))]
    out += [rec("in-domain", "random", v, dataset="mnist", ipc=i, seed=s)
            for i, base in ((1, 60.0), (10, 90.0)) for s, v in enumerate((base, base + 2))]
    out += [rec("in-domain", "full", 84.0, ipc=None)]
    return out


def cross_arch_records() -> list[dict[str, Any]]:
    """Two methods on three architectures, two seeds each."""
    archs = ("convnet", "resnet18", "vgg11")
    return [rec("cross-arch", m, base + 5 * j + s, arch=a, seed=s)
            for m, base in (("satm", 60.0), ("mtt", 55.0)) for j, a in enumerate(archs) for s in range(2)]


def ood_records() -> list[dict[str, Any]]:
    """In-domain (no test_dataset) and two shifted test sets per method."""
    out = []
    for m, base in (("satm", 70.0), ("mtt", 66.0)):
        for s in range(2):
            out.append(rec("ood", m, base + s, seed=s))
            out.append(rec("ood", m, base - 20 + s, seed=s, test_dataset="cifar10-c"))
            out.append(rec("ood", m, base - 30 + s, seed=s, test_dataset="cifar10.1"))
    return out


def continual_records(steps: int = 5, per: int = 2) -> list[dict[str, Any]]:
    """avg_accuracy per step, forgetting at the last step, and the accuracy matrix, for two memories."""
    out = []
    for m, base in (("satm", 90.0), ("reservoir", 80.0)):
        for s in range(3):
            cfg = {"classes_per_step": per}
            for k in range(1, steps + 1):
                out.append(rec("continual", m, base - 8 * k + s, metric="avg_accuracy", step=k, seed=s,
                               config=cfg))
                for e in range(1, k + 1):
                    value = base - 10 * (k - 1 - e) + s
                    out.append(rec("continual", m, value, metric="step_accuracy", step=k, eval_step=e, seed=s,
                                   config=cfg))
            out.append(rec("continual", m, 20.0 + s, metric="forgetting", step=steps, seed=s, config=cfg))
    return out


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    """Write records one JSON object per line."""
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def make_artifact(root: Path, name: str, method: str, iterations: int = 120, val: bool = False) -> Path:
    """A fake SyntheticSet directory with synthetic.json and a log.jsonl."""
    d = root / name
    d.mkdir(parents=True)
    meta = {"method": method, "dataset": "cifar10", "ipc": 10, "class_names": [f"c{i}" for i in range(10)],
            "image_shape": [3, 32, 32]}
    (d / "synthetic.json").write_text(json.dumps(meta))
    lines = []
    scale = 1.0 if method == "satm" else 3.0
    for i in range(iterations):
        row = {"iteration": i, "loss": scale * (1.0 / (1 + 0.05 * i)) + 0.01 * (i % 7),
               "grad_norm": scale * (5.0 / (1 + 0.02 * i)) * (1 + 0.2 * ((i * 37) % 11) / 11),
               "lr": 0.01, "seconds": 0.5, "peak_mem_mb": 100.0}
        if val and i % 20 == 0:
            row["val_accuracy"] = 30.0 + i / 10
        lines.append(json.dumps(row))
    (d / "log.jsonl").write_text("\n".join(lines) + "\n")
    return d
