"""`reproduce` with an executor: experts once per store, condense steps as one grid, then each step's grid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import satm_cl.condense.api as condense_api
import satm_cl.evaluate.runner as eval_runner
import satm_cl.experts.train as expert_train
import satm_cl.report as report
from satm_cl.execution import ExecConfig
from satm_cl.reproduce import run

TABLE = {
    "title": "tiny",
    "paper_ref": "none",
    "scales": {
        "cpu": {
            "suites": ["in-domain"],
            "runs": 2,
            "epochs": 1,
            "cells": [{"dataset": "digits", "ipc": 1, "methods": ["satm", "mtt", "random"], "seeds": [0]}],
        },
        "paper": {"suites": ["in-domain"], "runs": 1, "cells": []},
    },
}


def test_grid_order_experts_then_condense_then_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, Any]] = []
    monkeypatch.setattr(
        expert_train, "train_experts", lambda cfg, root, *a, **kw: seen.append(("experts", kw["executor"]))
    )
    monkeypatch.setattr(condense_api, "condense", lambda cfg, out, *a, **kw: seen.append(("condense", out)))
    monkeypatch.setattr(
        eval_runner, "run_evaluation", lambda req, executor: seen.append(("evaluate", executor))
    )
    monkeypatch.setattr(report, "build_report", lambda *a: [])
    table = tmp_path / "tiny.json"
    table.write_text(json.dumps(TABLE))
    grid = ExecConfig(threads=1)
    monkeypatch.chdir(tmp_path)
    run(str(table), out=Path("out"), device="cpu", echo=lambda _: None, executor=grid)
    kinds = [k for k, _ in seen]
    # satm and mtt share one expert store: it is completed once, before both condense jobs
    assert kinds == ["experts", "condense", "condense", "evaluate", "evaluate", "evaluate"]
    assert seen[0][1] == grid and all(v == grid for k, v in seen if k == "evaluate")
    condensed = [v for k, v in seen if k == "condense"]
    assert condensed == [(tmp_path / "out" / "artifacts" / f"digits-ipc1-{m}-s0") for m in ("satm", "mtt")]
    assert all(p.is_absolute() for p in condensed)  # workers may run in another directory
