"""Evaluation LR protocols (learned / tuned / both) and the ood suite's corrupted test sets."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
import torch

import satm_cl.evaluate.runner as runner
from satm_cl.baselines import create_baseline
from satm_cl.data import create_dataset
from satm_cl.errors import SatmError
from satm_cl.evaluate import EvalRequest, run_evaluation
from satm_cl.evaluate.lr_protocol import (
    CANDIDATES_FILE,
    LR_GRID,
    CandidateLog,
    expand_lr_protocols,
    lr_selection_config,
    recorded_choice,
    select_lr,
)
from satm_cl.evaluate.suites import OWN, SUITES, SuiteContext
from satm_cl.records import read_records, record_key
from satm_cl.synthetic import SyntheticSet

GRID = (0.01, 0.1)


@lru_cache(maxsize=1)
def _set() -> SyntheticSet:
    return create_baseline("random", "digits", 1, seed=0)


def test_expand_lr_protocols() -> None:
    assert expand_lr_protocols("both") == ("learned", "tuned")
    assert expand_lr_protocols(["tuned", "learned", "tuned"]) == ("learned", "tuned")
    assert expand_lr_protocols("tuned") == ("tuned",)
    with pytest.raises(SatmError, match="unknown LR protocol 'fixed'; valid: learned, tuned, both"):
        expand_lr_protocols("fixed")


def test_select_lr_takes_the_best_val_score_and_ties_to_the_smaller_lr() -> None:
    chosen, scores = select_lr({0.001: 50.0, 0.01: 80.0, 0.1: 80.0}.__getitem__, grid=(0.001, 0.01, 0.1))
    assert chosen == 0.01 and scores == {"0.001": 50.0, "0.01": 80.0, "0.1": 80.0}
    chosen, _ = select_lr(lambda lr: -abs(lr - 0.03))
    assert chosen == 0.03 and 0.03 in LR_GRID
    with pytest.raises(SatmError, match="empty"):
        select_lr(lambda lr: 0.0, grid=())


def test_recorded_choice_only_for_the_same_grid() -> None:
    config = {"lr_selection": lr_selection_config(0.1, {"0.01": 1.0, "0.1": 2.0}, seed=7, grid=GRID)}
    assert recorded_choice(config, grid=GRID) == config["lr_selection"]
    assert lr_selection_config(0.01, {}, seed=0)["at_grid_edge"] is False  # inside the default grid
    assert recorded_choice(config) is None  # made on another grid: not reused
    assert recorded_choice({}) is None


def test_records_without_a_protocol_have_the_learned_identity() -> None:
    base = {"stage": "in-domain", "method": "satm", "dataset": "digits", "ipc": 1, "arch": "convnet"}
    old = {**base, "seed": 0, "metric": "test_accuracy"}
    assert record_key(old) == record_key({**old, "lr_protocol": "learned"})
    assert record_key(old) != record_key({**old, "lr_protocol": "tuned"})


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple[str, ...], float | None, int]]:
    """Every training the runner starts: (test set names, lr, seed); the grid is cut to two LRs."""
    monkeypatch.setattr("satm_cl.evaluate.lr_protocol.LR_GRID", GRID)
    seen: list[tuple[tuple[str, ...], float | None, int]] = []
    real: Callable[..., list[dict[str, float]]] = runner.evaluate_runs

    def recording(
        syn: SyntheticSet, arch: str, tests: Any, epochs: int, seeds: Any, *args: Any, **kw: Any
    ) -> list[dict[str, float]]:
        seen.extend((tuple(tests), kw.get("lr"), seed) for seed in seeds)
        return real(syn, arch, tests, epochs, seeds, *args, **kw)

    monkeypatch.setattr(runner, "evaluate_runs", recording)
    return seen


def _request(out: Path, **kw: Any) -> EvalRequest:
    base: dict[str, Any] = {
        "synthetic": None,
        "baseline": "random",
        "dataset": "digits",
        "ipc": 1,
        "suites": ("in-domain",),
        "out": out,
        "runs": 1,
        "epochs": 2,
        "device": "cpu",
        "progress": False,
        "cache_dir": out / "cache",
    }
    return EvalRequest(**{**base, **kw})


def test_both_protocols_tune_on_val_and_record_the_choice(tmp_path: Path, calls: list[Any]) -> None:
    path = run_evaluation(_request(tmp_path, lr_protocol="both"))
    recs = {r["lr_protocol"]: r for r in read_records(path)}
    assert set(recs) == {"learned", "tuned"}
    learned, tuned = recs["learned"], recs["tuned"]
    assert learned["config"]["lr"] == pytest.approx(_set().lr) and "lr_selection" not in learned["config"]
    selection = tuned["config"]["lr_selection"]
    assert selection["grid"] == list(GRID) and selection["split"] == "val"
    assert set(selection["val_accuracy"]) == {"0.01", "0.1"}
    best = max(GRID, key=lambda lr: (selection["val_accuracy"][repr(lr)], -lr))
    assert selection["chosen"] == best == tuned["config"]["lr"]
    assert selection["at_grid_edge"] is True  # a two-value grid: every choice is at an edge
    # one val run per grid LR (the choice is made before any run is dispatched), then the learned run
    # on the test split and the tuned run at the chosen LR
    assert [(names, lr) for names, lr, _ in calls] == [
        (("val",), 0.01),
        (("val",), 0.1),
        (("own",), pytest.approx(_set().lr)),
        (("own",), best),
    ]
    assert calls[0][2] != 0  # selection runs use their own seed, not an evaluation seed
    calls.clear()
    run_evaluation(_request(tmp_path, lr_protocol="both"))
    assert calls == []  # everything recorded: nothing retrained


def test_tuned_rerun_with_more_runs_reuses_the_recorded_choice(tmp_path: Path, calls: list[Any]) -> None:
    run_evaluation(_request(tmp_path, lr_protocol="tuned"))
    assert len(calls) == 3
    chosen = calls[-1][1]
    calls.clear()
    path = run_evaluation(_request(tmp_path, lr_protocol="tuned", runs=2))
    assert [(names, lr, seed) for names, lr, seed in calls] == [(("own",), chosen, 1)]
    assert sorted(r["seed"] for r in read_records(path)) == [0, 1]


def test_tuned_candidates_are_grid_jobs_with_the_same_choice_under_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every candidate LR is a job of the executor (so `--jobs N` / Ray train them in parallel), and the
    choice and the runs are the same bytes in this process and in spawned workers (threads fixed per job)."""
    from satm_cl.execution import ExecConfig

    monkeypatch.setattr("satm_cl.evaluate.lr_protocol.LR_GRID", GRID)
    here = read_records(run_evaluation(_request(tmp_path / "here", lr_protocol="tuned")))
    labels: list[str] = []
    real = runner.run_jobs

    def spy(jobs: Any, cfg: Any = None, commit: Any = None) -> Any:
        labels.extend(job.label for job in jobs)
        return real(jobs, cfg, commit)

    monkeypatch.setattr(runner, "run_jobs", spy)
    workers = ExecConfig(jobs=2)
    there = read_records(run_evaluation(_request(tmp_path / "there", lr_protocol="tuned"), workers))
    assert labels[:2] == ["tune convnet epochs=2 lr=0.01", "tune convnet epochs=2 lr=0.1"]
    assert len(labels) == 3 and labels[2].startswith("evaluate ")
    assert there[0]["config"]["lr_selection"] == here[0]["config"]["lr_selection"]
    assert there[0]["value"] == here[0]["value"]


def test_interrupted_selection_retrains_only_unfinished_candidates(
    tmp_path: Path, calls: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run killed during LR selection keeps every finished candidate (`lr_candidates.jsonl`); the rerun
    trains only the rest and makes the same choice, with the same test number, as an uninterrupted run."""
    clean = read_records(run_evaluation(_request(tmp_path / "clean", lr_protocol="tuned")))
    calls.clear()
    real = runner.lr_job

    def dies_at_the_large_lr(job: runner.LrJob) -> float:
        if job.lr == 0.1:
            raise RuntimeError("killed")
        return real(job)

    monkeypatch.setattr(runner, "lr_job", dies_at_the_large_lr)
    out = tmp_path / "resumed"
    with pytest.raises(SatmError, match="killed"):
        run_evaluation(_request(out, lr_protocol="tuned"))
    assert not (out / "records.jsonl").is_file() or not read_records(out / "records.jsonl")
    assert len((out / CANDIDATES_FILE).read_text().splitlines()) == 1  # lr 0.01 finished and was kept
    monkeypatch.setattr(runner, "lr_job", real)
    calls.clear()
    resumed = read_records(run_evaluation(_request(out, lr_protocol="tuned")))
    assert [(names, lr) for names, lr, _ in calls] == [(("val",), 0.1), (("own",), clean[0]["config"]["lr"])]
    assert resumed[0]["config"]["lr_selection"] == clean[0]["config"]["lr_selection"]
    assert resumed[0]["value"] == clean[0]["value"]
    # another set (a different random subset) in the same out dir does not reuse those candidates
    calls.clear()
    run_evaluation(_request(out, lr_protocol="tuned", seed=1))
    assert [names for names, _, _ in calls] == [("val",), ("val",), ("own",)]


def test_candidate_log_mends_a_torn_line_and_refuses_a_foreign_one(tmp_path: Path) -> None:
    path = tmp_path / CANDIDATES_FILE
    log = CandidateLog(path)
    log.add({"arch": "convnet", "lr": 0.01}, 81.5)
    log.add({"arch": "convnet", "lr": 0.01}, 99.0)  # already there: not written twice
    with path.open("a") as fh:
        fh.write('{"key": {"arch": "convnet", "lr": 0.1}, "val_ac')  # killed mid-append
    again = CandidateLog(path)
    assert again.get({"lr": 0.01, "arch": "convnet"}) == 81.5
    assert again.get({"arch": "convnet", "lr": 0.1}) is None
    assert path.read_text().count("\n") == 1
    path.write_text('{"not": "a candidate"}\n')
    with pytest.raises(SatmError, match=f"{CANDIDATES_FILE}:1: not an LR candidate line"):
        CandidateLog(path)


def test_bad_protocol_fails_before_work(tmp_path: Path, calls: list[Any]) -> None:
    with pytest.raises(SatmError, match="unknown LR protocol"):
        run_evaluation(_request(tmp_path, lr_protocol="bogus"))
    assert calls == [] and not (tmp_path / "records.jsonl").exists()


def test_ood_suite_plans_corrupted_targets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("satm_cl.evaluate.suites.OOD_PARTNERS", {})
    test = create_dataset("digits").test
    ctx = SuiteContext(_set(), "digits", {OWN: (test.x, test.y)}, corruptions=("contrast",), cache=tmp_path)
    targets, notes = SUITES.get("ood")(ctx)
    assert not notes  # the corruptions stand in for the missing partner
    labels = [f"digits-C/contrast/{s}" for s in (1, 2, 3)]
    assert [(t.stage, t.test, t.test_dataset) for t in targets] == [
        ("ood", OWN, None),
        *[("ood", label, label) for label in labels],
    ]
    for label in labels:
        x, y = ctx.tests[label]
        assert x.shape == test.x.shape and torch.equal(y, test.y) and not torch.equal(x, test.x)
    assert len(list((tmp_path / "corruptions" / "digits").glob("contrast-*.safetensors"))) == 3
    assert "digits-C" in ctx.extra
    # no partner and no corruptions: one note
    targets, notes = SUITES.get("ood")(SuiteContext(_set(), "digits", {OWN: (test.x, test.y)}))
    assert targets == [] and len(notes) == 1


def test_runner_records_corruptions_from_one_training(tmp_path: Path, calls: list[Any]) -> None:
    req = _request(tmp_path, suites=("ood",), corruptions="rotation")
    path = run_evaluation(req)
    recs = [r for r in read_records(path) if r["metric"] == "test_accuracy"]
    shifted = sorted(r["test_dataset"] for r in recs if r.get("test_dataset", "").startswith("digits-C/"))
    assert shifted == [f"digits-C/rotation/{s}" for s in (1, 2, 3)]
    trained = [c for c in calls if "own" in c[0]]
    assert len(trained) == 1 and set(trained[0][0]) >= {"own", *shifted}
    assert "digits-C" in recs[0]["config"]["resampled"]
    with pytest.raises(SatmError, match="unknown corruption"):
        run_evaluation(_request(tmp_path / "bad", suites=("ood",), corruptions="fog"))
