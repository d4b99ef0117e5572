"""The runner: records per memory and class order, resuming, equal budgets, name and settings errors."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from _continual_fixtures import fake_set

from satm_cl.continual import ContinualRequest, preset_request, run_continual
from satm_cl.continual.presets import PRESETS, condense_config
from satm_cl.continual.scenarios import draw_class_order
from satm_cl.data import DatasetSplits
from satm_cl.errors import SatmError
from satm_cl.evaluate.runner import set_fingerprint
from satm_cl.records import read_records
from satm_cl.synthetic import load_synthetic


def _req(tmp: Path, artifacts: dict[str, Path], **kw: object) -> ContinualRequest:
    base = ContinualRequest(memories=("satm", "random", "reservoir", "gdumb"), orders=2, out=tmp,
                            device="cpu", synthetic=artifacts, epochs=2, progress=False)
    return replace(base, **kw)  # type: ignore[arg-type]


def test_records_written_and_resumed(tmp_path: Path, artifacts: dict[str, Path]) -> None:
    path = run_continual(_req(tmp_path, artifacts))
    recs = read_records(path)
    # per (memory, order): 5 avg_accuracy + 15 step_accuracy + forgetting, AIA, BWT
    assert len(recs) == 4 * 2 * 23
    one = [r for r in recs if r["method"] == "satm" and r["seed"] == 1]
    assert {r["stage"] for r in one} == {"continual"} and {r["arch"] for r in one} == {"convnet"}
    steps = sorted((r["step"], r["eval_step"]) for r in one if r["metric"] == "step_accuracy")
    assert steps == [(i, j) for i in range(1, 6) for j in range(1, i + 1)]
    assert [r["step"] for r in one if r["metric"] == "forgetting"] == [5]
    last = {r["metric"]: r["value"] for r in one if r["step"] == 5 and r.get("eval_step") is None}
    averages = [r["value"] for r in sorted(one, key=lambda r: r["step"]) if r["metric"] == "avg_accuracy"]
    assert last["avg_incremental_accuracy"] == pytest.approx(sum(averages) / 5)
    assert last["bwt"] == pytest.approx(-last["forgetting"])
    cfg = one[0]["config"]
    assert cfg == {"protocol": "retrain", "steps": 5, "classes_per_step": 2, "mem_size": 10, "epochs": 2,
                   "class_order": draw_class_order(10, 1), "memory_mode": "offline",
                   "set_fingerprint": set_fingerprint(load_synthetic(artifacts["satm"]))}
    modes = {r["method"]: r["config"]["memory_mode"] for r in recs}
    assert modes == {"satm": "offline", "random": "stream", "reservoir": "stream", "gdumb": "stream"}
    before = path.read_text()
    assert run_continual(_req(tmp_path, artifacts)) == path
    assert path.read_text() == before  # nothing new on a rerun


def test_same_seed_same_numbers(tmp_path: Path, artifacts: dict[str, Path]) -> None:
    def values(out: Path) -> list[tuple[object, ...]]:
        req = _req(out, artifacts, memories=("mtt", "herding"), orders=1, seed=3)
        recs = read_records(run_continual(req))
        return sorted((r["method"], r["metric"], r["step"], r.get("eval_step"), r["value"]) for r in recs)

    assert values(tmp_path / "a") == values(tmp_path / "b")


def test_other_settings_in_same_out_is_an_error(tmp_path: Path, artifacts: dict[str, Path]) -> None:
    run_continual(_req(tmp_path, artifacts, memories=("random",), orders=1))
    with pytest.raises(SatmError, match="other settings"):
        run_continual(_req(tmp_path, artifacts, memories=("random",), orders=1, epochs=3))


def test_another_memory_with_another_setup_in_same_out_is_an_error(
    tmp_path: Path, artifacts: dict[str, Path]
) -> None:
    path = run_continual(_req(tmp_path, artifacts, memories=("random",), orders=1))
    before = path.read_text()
    with pytest.raises(SatmError, match=r"other settings \(random order 0: epochs 2 there vs 3 now\)"):
        run_continual(_req(tmp_path, artifacts, memories=("reservoir",), orders=1, epochs=3))
    with pytest.raises(SatmError, match="protocol 'retrain' there vs 'naive' now"):
        run_continual(_req(tmp_path, artifacts, memories=("reservoir",), orders=1, protocol="naive"))
    assert path.read_text() == before


def test_another_set_of_one_memory_in_same_out_is_an_error(
    tmp_path: Path, artifacts: dict[str, Path], digits: DatasetSplits
) -> None:
    """Two `--synthetic` sets of one method never pool: the records carry the set's fingerprint."""
    path = run_continual(_req(tmp_path, artifacts, memories=("satm",), orders=1))
    before = path.read_text()
    other = fake_set(digits, method="satm", offset=7).save(tmp_path / "other-satm")
    with pytest.raises(SatmError, match="another set"):
        run_continual(_req(tmp_path, {**artifacts, "satm": other}, memories=("satm",), orders=2))
    assert path.read_text() == before
    # the same set resumes
    assert run_continual(_req(tmp_path, artifacts, memories=("satm",), orders=2)) == path
    assert {r["seed"] for r in read_records(path)} == {0, 1}


def test_request_coerces_what_a_user_types(tmp_path: Path) -> None:
    req = ContinualRequest(memories="satm, herding", out=str(tmp_path), memory_dir=str(tmp_path / "m"))
    assert req.memories == ("satm", "herding") and req.out == tmp_path and req.memory_dir == tmp_path / "m"
    assert ContinualRequest(memories=["reservoir"]).memories == ("reservoir",)  # type: ignore[arg-type]
    with pytest.raises(SatmError, match="orders must be int"):
        ContinualRequest(orders="3")  # type: ignore[arg-type]


def test_memory_dir_that_is_a_file_is_refused_first(tmp_path: Path, artifacts: dict[str, Path]) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(SatmError, match="--memory-dir"):
        run_continual(_req(tmp_path / "out", artifacts, memories=("herding",), memory_dir=tmp_path / "file"))
    assert not (tmp_path / "out").exists()


def test_bad_names_are_errors(tmp_path: Path, artifacts: dict[str, Path]) -> None:
    with pytest.raises(SatmError, match=r"unknown memory 'nope'; valid: satm, mtt"):
        run_continual(_req(tmp_path, artifacts, memories=("satm", "nope")))
    with pytest.raises(SatmError, match="unknown protocol 'icarl'; valid: retrain, naive, lwf, ewc"):
        run_continual(_req(tmp_path, artifacts, protocol="icarl"))
    with pytest.raises(SatmError, match="evenly"):
        run_continual(_req(tmp_path, artifacts, steps=3))
    with pytest.raises(SatmError, match="unknown continual preset"):
        preset_request("nope")
    assert not (tmp_path / "records.jsonl").exists()


def test_wrong_ipc_artifact_is_an_error(tmp_path: Path, artifacts: dict[str, Path]) -> None:
    with pytest.raises(SatmError, match="ipc 5"):
        run_continual(_req(tmp_path, artifacts, ipc=5, memories=("satm",)))


def test_strategy_protocol_through_runner(tmp_path: Path, artifacts: dict[str, Path]) -> None:
    recs = read_records(run_continual(_req(tmp_path, artifacts, protocol="lwf", orders=1, epochs=1,
                                           memories=("satm", "class_balanced"))))
    assert {r["config"]["protocol"] for r in recs} == {"lwf"} and len(recs) == 2 * 23


def test_reset_optimizer_is_recorded_and_kept_apart(tmp_path: Path, artifacts: dict[str, Path]) -> None:
    with pytest.raises(SatmError, match="strategy protocols"):
        run_continual(_req(tmp_path, artifacts, reset_optimizer=True))  # retrain: nothing to reset
    kw = {"protocol": "naive", "orders": 1, "epochs": 1, "memories": ("reservoir",)}
    recs = read_records(run_continual(_req(tmp_path / "reset", artifacts, reset_optimizer=True, **kw)))
    assert {r["config"].get("reset_optimizer") for r in recs} == {True}
    kept = read_records(run_continual(_req(tmp_path / "kept", artifacts, **kw)))
    assert "reset_optimizer" not in kept[0]["config"]  # records of the default are as before the option
    assert [r["value"] for r in recs] != [r["value"] for r in kept]
    with pytest.raises(SatmError, match=r"reset_optimizer True there vs not set \(default\) now"):
        run_continual(_req(tmp_path / "reset", artifacts, **kw))


def test_replay_batch_is_recorded_checked_and_kept_apart(tmp_path: Path, artifacts: dict[str, Path]) -> None:
    kw = {"protocol": "naive", "orders": 1, "epochs": 1, "memories": ("reservoir",)}
    for bad, match in (({"protocol": "retrain"}, "strategy protocols"), ({"replay_batch": 0}, ">= 1"),
                       ({"memories": ("reservoir", "gdumb")}, "gdumb")):
        with pytest.raises(SatmError, match=match):
            run_continual(_req(tmp_path / "bad", artifacts, **{**kw, "replay_batch": 5, **bad}))
    assert not (tmp_path / "bad").exists()
    recs = read_records(run_continual(_req(tmp_path / "fixed", artifacts, replay_batch=5, **kw)))
    assert {r["config"].get("replay_batch") for r in recs} == {5}
    with pytest.raises(SatmError, match=r"replay_batch 5 there vs not set \(default\) now"):
        run_continual(_req(tmp_path / "fixed", artifacts, **kw))


def test_a_replay_batch_er_ace_could_never_draw_is_refused_before_work(
    tmp_path: Path, artifacts: dict[str, Path]
) -> None:
    """ER-ACE / DER skip replay until the memory holds a full batch: at IPC 1 on digits in 5 steps a per-class
    memory holds 2 images after the first experience, so a batch of 3 would silently replay nothing there."""
    for protocol in ("er_ace", "der"):
        with pytest.raises(SatmError, match="--replay-batch 3 is more than the 2 images"):
            run_continual(_req(tmp_path / protocol, artifacts, protocol=protocol, replay_batch=3, orders=1,
                               memories=("reservoir",)))
        assert not (tmp_path / protocol / "records.jsonl").exists()


def test_a_replay_batch_that_does_not_divide_the_memory_sizes_is_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from satm_cl.continual.runner import check_replay_batch

    req = ContinualRequest(protocol="naive", ipc=10, steps=5, replay_batch=20)
    with caplog.at_level("WARNING"):
        check_replay_batch(req, 10)  # memories of 20, 40, 60, 80 and 100 images: 20 divides them all
        assert not caplog.records
        check_replay_batch(replace(req, replay_batch=30), 10)
    assert "does not divide the memory sizes 20, 40, 80, 100" in caplog.text


def test_presets() -> None:
    assert set(PRESETS) >= {"cifar10-5steps-ipc50", "tinyimagenet-10steps-ipc3", "tinyimagenet-20steps-ipc3",
                            "digits-5steps-ipc1", "digits-5steps-ipc5", "fashion-mnist-5steps-ipc10"}
    req = preset_request("digits-5steps-ipc5", orders=1)
    assert (req.dataset, req.steps, req.ipc, req.orders) == ("digits", 5, 5, 1)
    cfg = condense_config("digits", 5, "mtt")
    assert cfg.ipc == 5 and cfg.method == "mtt" and cfg.expert.arch_kwargs["depth"] == 2


def test_records_from_before_memory_mode_still_resume(tmp_path: Path, artifacts: dict[str, Path]) -> None:
    path = run_continual(_req(tmp_path, artifacts, memories=("random",), orders=1))
    old = []
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        rec["config"].pop("memory_mode")
        rec["config"].pop("set_fingerprint", None)
        old.append(json.dumps(rec, sort_keys=True))
    path.write_text("\n".join(old) + "\n")
    assert run_continual(_req(tmp_path, artifacts, memories=("random",), orders=1)) == path
    assert path.read_text().splitlines() == old  # recognised as finished, not an error


def test_an_experience_the_strategy_never_learned_is_warned_about(
    tmp_path: Path, artifacts: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """ER-ACE after 1 epoch scores 0 % on an experience right after training on it (its loss sets new classes
    against old ones only through replayed images): the run says so, since that experience's BWT reads as
    nothing forgotten."""
    with caplog.at_level("WARNING"):
        path = run_continual(_req(tmp_path, artifacts, protocol="er_ace", orders=1, epochs=1,
                                  memories=("reservoir",)))
    recs = read_records(path)
    below = [r for r in recs if r["metric"] == "step_accuracy" and r["step"] == r["eval_step"]
             and r["value"] < 100 / (2 * r["step"])]
    assert below, "the premise: some experience was not learned"
    assert "not learned" in caplog.text and f"experience {below[0]['step']} scored" in caplog.text
