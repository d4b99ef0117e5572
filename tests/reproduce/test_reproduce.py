"""`satm-cl reproduce`: table specs, plans, dry runs, fail-fast data checks, step order (nothing trains)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from _fake_data import write_fashion_mnist
from typer.testing import CliRunner

import satm_cl.condense.api as condense_api
import satm_cl.continual.runner as continual_runner
import satm_cl.evaluate.runner as eval_runner
import satm_cl.report as report
from satm_cl import reproduce
from satm_cl.cli import app
from satm_cl.data import fashion_mnist as fm
from satm_cl.errors import SatmError
from satm_cl.reproduce import SCALES, list_tables, load_table, plan, run

TABLES = ("continual", "cross-arch", "in-domain", "ood")

TINY = {
    "title": "tiny",
    "paper_ref": "none",
    "scales": {
        "cpu": {
            "suites": ["in-domain"],
            "runs": 2,
            "epochs": 1,
            "cells": [
                {"dataset": "digits", "ipc": 1, "methods": ["satm", "random", "full"], "seeds": [0, 1]},
                {"dataset": "digits", "ipc": 10, "methods": ["full"], "seeds": [0]},
            ],
        },
        "paper": {"suites": ["in-domain"], "runs": 1, "cells": []},
    },
}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Replace every library call `run` makes with a recorder, so nothing is trained."""
    seen: list[tuple[str, Any]] = []

    def fake_condense(cfg: Any, out: Path, device: Any, **kw: Any) -> None:
        seen.append(("condense", (cfg, Path(out), kw)))

    def fake_eval(req: Any) -> Path:
        seen.append(("evaluate", req))
        return Path(req.out) / "records.jsonl"

    def fake_continual(req: Any) -> Path:
        seen.append(("continual", req))
        return Path(req.out) / "records.jsonl"

    def fake_report(records: list[Path], out: Path, artifacts: list[Path]) -> list[Path]:
        seen.append(("report", (list(records), Path(out), list(artifacts))))
        return []

    monkeypatch.setattr(condense_api, "condense", fake_condense)
    monkeypatch.setattr(eval_runner, "run_evaluation", fake_eval)
    monkeypatch.setattr(continual_runner, "run_continual", fake_continual)
    monkeypatch.setattr(report, "build_report", fake_report)
    return seen


def test_the_four_tables_exist() -> None:
    assert set(TABLES) <= set(list_tables())


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("table", TABLES)
def test_every_table_loads_and_plans(table: str, scale: str, tmp_path: Path) -> None:
    spec = load_table(table)
    assert spec["title"] and spec["paper_ref"]
    steps = plan(table, scale, out=tmp_path)
    if not steps:  # only a scale that cannot run here may be empty, and it must say why
        assert spec["scales"][scale]["note"]
        return
    kinds = [s.kind for s in steps]
    assert kinds[-1] == "report" and "report" not in kinds[: kinds.index("report")]
    assert kinds == sorted(kinds, key=["condense", "evaluate", "continual", "report"].index)
    for s in steps:
        line = s.describe()
        assert line and "\n" not in line
    assert not tmp_path.joinpath("report").exists()


def test_cpu_in_domain_covers_the_brief() -> None:
    steps = plan("in-domain", "cpu")
    cells = {(s.evaluate.baseline or "set", s.evaluate.dataset) for s in steps if s.evaluate is not None}
    assert {("herding", "digits"), ("kcenter", "mnist5k"), ("full", "digits"), ("set", None)} <= cells
    made = {(s.condense.dataset, s.condense.ipc, s.condense.method) for s in steps if s.condense is not None}
    assert made == {
        (d, k, m) for d, k in (("digits", 1), ("digits", 10), ("mnist5k", 1)) for m in ("satm", "mtt")
    }


@pytest.mark.parametrize("scale", SCALES)
def test_cross_arch_runs_both_lr_protocols(scale: str) -> None:
    """Issue 11: the cross-arch table reports the learned alpha and a per-arch LR tuned on val, both."""
    steps = [s for s in plan("cross-arch", scale) if s.evaluate is not None]
    assert steps and {s.evaluate.lr_protocol for s in steps if s.evaluate is not None} == {"both"}
    assert all(", lr both," in s.describe() for s in steps)


def test_a_bad_lr_protocol_is_refused_before_any_work(tmp_path: Path) -> None:
    spec = json.loads(json.dumps(TINY))
    spec["scales"]["cpu"]["lr_protocol"] = "guessed"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(spec))
    with pytest.raises(SatmError, match="unknown LR protocol 'guessed'"):
        plan(str(bad), "cpu")


def test_dry_run_prints_one_line_per_step_and_writes_nothing(
    tmp_path: Path, calls: list[tuple[str, Any]]
) -> None:
    lines: list[str] = []
    out = tmp_path / "out"
    steps = run("in-domain", out=out, dry_run=True, echo=lines.append)
    assert len(lines) == len(steps) > 0
    assert lines[0].startswith(f"[1/{len(steps)}] condense")
    assert not out.exists() and calls == []


def test_paper_scale_fails_fast_naming_the_missing_dataset(
    tmp_path: Path, calls: list[tuple[str, Any]]
) -> None:
    out = tmp_path / "out"
    with pytest.raises(SatmError, match=r"cifar10 needs --data-dir") as err:
        (tmp_path / "empty").mkdir()
        run("in-domain", "paper", out=out, device="cpu", data_dir=tmp_path / "empty", echo=lambda _: None)
    assert "tinyimagenet" in str(err.value)
    assert not out.exists() and calls == []
    lines: list[str] = []  # a dry run shows the plan and says where a real run would stop
    run("in-domain", "paper", out=out, data_dir=tmp_path / "empty", dry_run=True, echo=lines.append)
    assert lines[-1].startswith("note: a real run would stop before its first step: cannot reproduce")
    assert "cifar10 needs --data-dir" in lines[-1] and not out.exists()


def test_empty_scale_explains_itself() -> None:
    with pytest.raises(SatmError, match=r"nothing to reproduce for ood at paper scale: .*OOD_PARTNERS"):
        run("ood", "paper", dry_run=True, echo=lambda _: None)


def test_unknown_table_and_scale() -> None:
    with pytest.raises(SatmError, match="unknown table 'nope'; valid: continual, cross-arch, in-domain, ood"):
        load_table("nope")
    with pytest.raises(SatmError, match="unknown scale 'huge' for table in-domain; valid: paper, cpu"):
        plan("in-domain", "huge")


def test_malformed_specs_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SatmError, match=re.escape(f"cannot read table spec {bad}")):
        load_table(str(bad))
    spec = json.loads(json.dumps(TINY))
    del spec["scales"]["cpu"]["cells"][0]["seeds"]
    bad.write_text(json.dumps(spec))
    with pytest.raises(
        SatmError, match=re.escape(f"malformed table spec {bad}: scale 'cpu' cell 0 lacks seeds")
    ):
        load_table(str(bad))
    spec["scales"]["cpu"]["cells"][0]["seeds"] = [0]
    spec["scales"]["cpu"]["runs"] = 11
    bad.write_text(json.dumps(spec))
    with pytest.raises(SatmError, match=re.escape("runs must be in 1..10")):
        plan(str(bad))


def test_run_order_seed_offsets_and_paths(tmp_path: Path, calls: list[tuple[str, Any]]) -> None:
    table = tmp_path / "tiny.json"
    table.write_text(json.dumps(TINY))
    out = tmp_path / "out"
    steps = run(str(table), out=out, device="cpu", echo=lambda _: None)
    assert [k for k, _ in calls] == ["condense"] * 2 + ["evaluate"] * 6 + ["report"]
    arts = [out / "artifacts" / f"digits-ipc1-satm-s{s}" for s in (0, 1)]
    condensed = [(c[0].method, c[0].seed, c[1], c[2]["resume"]) for _, c in calls[:2]]
    assert condensed == [("satm", 0, arts[0], True), ("satm", 1, arts[1], True)]
    evals = [(r.synthetic, r.baseline, r.ipc, r.seed) for _, r in calls[2:8]]
    assert evals == [
        (arts[0], None, None, 0),
        (arts[1], None, None, 10),  # artifact seed s is evaluated from base seed 10*s
        (None, "random", 1, 0),
        (None, "random", 1, 10),  # baselines: the same offsets
        (None, "full", None, 0),
        (None, "full", None, 10),  # full ignores the IPC: the IPC 10 cell adds nothing
    ]
    assert {(r.out, r.runs, r.epochs, r.device) for _, r in calls[2:8]} == {(out, 2, 1, "cpu")}
    assert calls[-1][1] == ([out / "records.jsonl"], out / "report", [arts[0]])
    assert (out / "plan.txt").read_text().count("\n") == len(steps)
    timings = [json.loads(line) for line in (out / "timings.jsonl").read_text().splitlines()]
    assert [t["step"] for t in timings] == (out / "plan.txt").read_text().splitlines()  # each step, in order
    assert all(t["seconds"] >= 0 for t in timings)


def test_finished_artifacts_are_not_condensed_again(tmp_path: Path, calls: list[tuple[str, Any]]) -> None:
    table = tmp_path / "tiny.json"
    table.write_text(json.dumps(TINY))
    out = tmp_path / "out"
    first = plan(str(table), out=out)[0]
    assert first.condense is not None
    first.out.mkdir(parents=True)
    (first.out / "synthetic.json").write_text(json.dumps({"config": first.condense.to_dict()}))
    run(str(table), out=out, device="cpu", echo=lambda _: None)
    assert [c[0].seed for k, c in calls if k == "condense"] == [1]


def test_continual_passes_condensed_memories(
    tmp_path: Path, calls: list[tuple[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cpu table has a Fashion-MNIST cell: tiny idx files stand in for it, and the system copy (Debian's
    # dataset-fashion-mnist) is hidden, so the test passes on a fresh machine and on one that has it.
    monkeypatch.setattr(fm, "SYSTEM_DIRS", ())
    data = write_fashion_mnist(tmp_path / "data" / "fashion-mnist").parent
    out = tmp_path / "out"
    run("continual", out=out, device="cpu", data_dir=data, echo=lambda _: None)
    continual = [r for k, r in calls if k == "continual"]
    assert [(r.dataset, r.steps, r.ipc, r.out) for r in continual] == [
        ("digits", 5, 1, out / "continual"),
        ("fashion-mnist", 5, 10, out / "continual"),
    ]
    assert continual[0].synthetic == {m: out / "artifacts" / f"digits-ipc1-{m}-s0" for m in ("satm", "mtt")}
    assert calls[-1][1][:2] == ([out / "continual" / "records.jsonl"], out / "report")


def test_continual_cells_sharing_dataset_and_ipc_get_their_own_records() -> None:
    steps = plan("continual", "paper", out=Path("o"))
    dirs = [s.out for s in steps if s.kind == "continual"]
    assert len(set(dirs)) == 3 and Path("o/continual/tinyimagenet-20steps-ipc3") in dirs
    assert [s.records for s in steps if s.kind == "report"] == [(d / "records.jsonl",) for d in dirs]


def test_needed_datasets_include_ood_partners() -> None:
    assert reproduce.needed_datasets(plan("ood", "cpu")) == ["digits", "mnist5k"]


cli = CliRunner()


def test_cli_dry_run() -> None:
    res = cli.invoke(app, ["reproduce", "--dry-run", "in-domain"])
    assert res.exit_code == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == len(plan("in-domain", "cpu"))
    assert "results/reproduce/in-domain-cpu/artifacts/digits-ipc1-satm-s0" in lines[0]


def test_cli_lists_tables_without_a_name() -> None:
    res = cli.invoke(app, ["reproduce"])
    assert res.exit_code == 0
    for name in TABLES:
        assert any(
            line.startswith(name) and load_table(name)["title"] in line for line in res.stdout.splitlines()
        )


def test_cli_unknown_table_is_one_line() -> None:
    res = cli.invoke(app, ["reproduce", "nope"])
    assert res.exit_code == 2
    assert res.stderr.strip() == "error: unknown table 'nope'; valid: continual, cross-arch, in-domain, ood"
