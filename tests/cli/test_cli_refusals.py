"""Explicit input is honoured or refused: --out naming a file, a missing --data-dir, truncate > syn_steps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from satm_cl.baselines import create_baseline
from satm_cl.cli import app

runner = CliRunner()


def _refused(args: list[str], *needles: str) -> str:
    res = runner.invoke(app, args)
    assert res.exit_code == 2, (res.output, res.exception)
    assert res.exception is None or isinstance(res.exception, SystemExit)
    err = res.stderr
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in res.output
    for needle in needles:
        assert needle in err
    return err


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return create_baseline("random", "digits", 1).save(tmp_path_factory.mktemp("art") / "set")


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rec") / "records.jsonl"
    row = {"stage": "in-domain", "method": "random", "dataset": "digits", "ipc": 1, "arch": "convnet"}
    path.write_text(json.dumps({**row, "seed": 0, "metric": "test_accuracy", "value": 50.0}) + "\n")
    return path


def _out_cases(artifact: Path, records: Path, tmp: Path) -> dict[str, list[str]]:
    table = tmp / "t.json"
    table.write_text(
        json.dumps(
            {
                "title": "t",
                "paper_ref": "none",
                "scales": {
                    "cpu": {
                        "suites": ["in-domain"],
                        "runs": 1,
                        "epochs": 1,
                        "cells": [{"dataset": "digits", "ipc": 1, "methods": ["random"], "seeds": [0]}],
                    },
                    "paper": {"suites": ["in-domain"], "runs": 1, "cells": []},
                },
            }
        )
    )
    cache = ["--cache-dir", str(tmp / "cache")]
    return {
        "condense": ["condense", "--iterations", "1", "--device", "cpu", *cache],
        "evaluate": ["evaluate", "--baseline", "random", "--dataset", "digits", "--ipc", "1", "--runs", "1"],
        "continual": [
            "evaluate",
            "--suite",
            "continual",
            "--memories",
            "random",
            "--orders",
            "1",
            "--epochs",
            "1",
        ],
        "report": ["report", str(records)],
        "reproduce": ["reproduce", str(table), "--device", "cpu", *cache],
        "reproduce-dry": ["reproduce", str(table), "--dry-run"],
    }


@pytest.mark.parametrize(
    "case", ["condense", "evaluate", "continual", "report", "reproduce", "reproduce-dry"]
)
def test_out_naming_an_existing_file_is_refused(
    case: str, artifact: Path, records: Path, tmp_path: Path
) -> None:
    target = tmp_path / "taken"
    target.write_text("precious\n")
    args = _out_cases(artifact, records, tmp_path)[case]
    _refused([*args, "--out", str(target)], str(target), "not a directory")
    assert target.read_text() == "precious\n"
    assert not (tmp_path / "cache").exists()  # refused before any expert training


def test_out_under_a_file_is_refused(records: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    _refused(["report", str(records), "--out", str(tmp_path / "file" / "report")], "not a directory")


def test_show_out_naming_a_directory_is_refused(artifact: Path, tmp_path: Path) -> None:
    _refused(["show", str(artifact), "--out", str(tmp_path)], "is a directory")


@pytest.mark.parametrize(
    "args",
    [
        ["datasets"],
        ["experts", "--dataset", "digits"],
        ["condense", "--dataset", "digits"],
        ["evaluate", "--baseline", "random", "--dataset", "digits", "--ipc", "1"],
        ["evaluate", "--suite", "continual", "--memories", "random"],
        ["reproduce", "in-domain", "--dry-run"],
    ],
)
def test_missing_data_dir_is_refused_by_every_command(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # default output paths are relative
    monkeypatch.setenv("SATM_CL_CACHE", str(tmp_path / "cache"))
    missing = tmp_path / "no-such-dir"
    _refused([*args, "--data-dir", str(missing)], str(missing), "does not exist")
    assert not missing.exists()


def test_data_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("x")
    _refused(["datasets", "--data-dir", str(f)], "not a directory")


def test_truncate_beyond_syn_steps_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"syn_steps": 5, "truncate": 50}))
    _refused(
        ["condense", "--config", str(cfg), "--cache-dir", str(tmp_path / "cache")], "truncate", "syn_steps"
    )
    assert not (tmp_path / "cache").exists()
