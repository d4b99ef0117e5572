"""Continual checks: an experience below chance right after its step is flagged in the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from _report_fixtures import continual_records, rec, write_jsonl

from satm_cl.report import build_report
from satm_cl.report.checks import unlearned_experiences


def _diag(value: float, step: int, seed: int = 0, per: int = 2, **cfg: Any) -> dict[str, Any]:
    return rec("continual", "satm", value, dataset="digits", ipc=1, seed=seed, metric="step_accuracy",
               step=step, eval_step=step, config={"classes_per_step": per, "protocol": "er_ace", **cfg})


def test_below_chance_is_flagged_with_its_orders() -> None:
    # step 5 of 2 classes each: chance among 10 seen classes is 10 %
    lines = unlearned_experiences([_diag(0.0, 5, seed=0), _diag(9.9, 5, seed=2), _diag(10.0, 5, seed=1)])
    assert len(lines) == 1
    assert "er_ace satm digits ipc 1: experience 5 scored 0.0 / 9.9 %" in lines[0]
    assert "class order 0, 2" in lines[0] and "10 classes seen: 10.0 %" in lines[0]


def test_chance_follows_the_classes_seen() -> None:
    # step 1 of 2 classes: chance 50 %; 45 % is below it, while at step 5 it would not be
    assert len(unlearned_experiences([_diag(45.0, 1)])) == 1
    assert unlearned_experiences([_diag(45.0, 5)]) == []


def test_earlier_experiences_and_other_stages_are_not_checked() -> None:
    off_diagonal = rec("continual", "satm", 0.0, metric="step_accuracy", step=5, eval_step=1,
                       config={"classes_per_step": 2})
    in_domain = rec("in-domain", "satm", 0.0, config={"classes_per_step": 2})
    no_split = rec("continual", "satm", 0.0, metric="step_accuracy", step=1, eval_step=1)
    assert unlearned_experiences([off_diagonal, in_domain, no_split]) == []


def test_report_shows_and_warns_about_unlearned_experiences(tmp_path: Path) -> None:
    records = [*continual_records(), _diag(0.0, 5)]
    warnings: list[str] = []
    build_report([write_jsonl(tmp_path / "r.jsonl", records)], tmp_path / "report", warn=warnings.append)
    readme = (tmp_path / "report" / "README.md").read_text()
    assert "**Check**" in readme and "experience 5 scored 0.0 %" in readme
    assert any("experience 5 scored 0.0 %" in w for w in warnings)
