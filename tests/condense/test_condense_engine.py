"""The outer loop end to end: determinism, resume equality, artifact round trip, failure modes."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from _tiny import tiny_config

from satm_cl.condense import condense
from satm_cl.condense.engine import Condenser, State
from satm_cl.errors import SatmError
from satm_cl.io import sha256_file
from satm_cl.synthetic import META_FILE, TENSOR_FILE, load_synthetic

CPU = torch.device("cpu")


def _meta_without_timing(path: Path) -> dict:
    meta = json.loads((path / META_FILE).read_text())
    meta.pop("wall_time_s")
    return meta


def test_same_seed_same_bytes(cache_root: Path, tmp_path: Path) -> None:
    cfg = tiny_config(eval_every=2)
    condense(cfg, tmp_path / "a", CPU, cache_root=cache_root, progress=False)
    condense(cfg, tmp_path / "b", CPU, cache_root=cache_root, progress=False)
    assert (tmp_path / "a" / TENSOR_FILE).read_bytes() == (tmp_path / "b" / TENSOR_FILE).read_bytes()
    assert _meta_without_timing(tmp_path / "a") == _meta_without_timing(tmp_path / "b")
    other = condense(replace(cfg, seed=1), tmp_path / "c", CPU, cache_root=cache_root, progress=False)
    assert not torch.equal(other.images, load_synthetic(tmp_path / "a").images)


def test_resume_ends_with_the_same_artifact(
    cache_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tiny_config(iterations=6, checkpoint_every=4, eval_every=2)
    condense(cfg, tmp_path / "full", CPU, cache_root=cache_root, progress=False)
    real = Condenser.hypergradients

    def killed_in_the_fourth(self: Condenser, st: State) -> Any:
        out = real(self, st)  # the generator has moved on, the images not yet
        if st.iteration == 3:
            raise KeyboardInterrupt  # ctrl-C mid-iteration, before any periodic checkpoint
        return out

    monkeypatch.setattr(Condenser, "hypergradients", killed_in_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        condense(cfg, tmp_path / "cut", CPU, cache_root=cache_root, progress=False)
    monkeypatch.setattr(Condenser, "hypergradients", real)
    # the interrupt saved the state after the last finished iteration (the periodic one would be at 4)
    assert json.loads((tmp_path / "cut" / "checkpoint.json").read_text())["iteration"] == 3
    assert not (tmp_path / "cut" / TENSOR_FILE).exists()
    condense(cfg, tmp_path / "cut", CPU, cache_root=cache_root, resume=True, progress=False)
    assert (tmp_path / "full" / TENSOR_FILE).read_bytes() == (tmp_path / "cut" / TENSOR_FILE).read_bytes()
    assert _meta_without_timing(tmp_path / "full") == _meta_without_timing(tmp_path / "cut")
    log_full = [json.loads(line) for line in (tmp_path / "full" / "log.jsonl").read_text().splitlines()]
    log_cut = [json.loads(line) for line in (tmp_path / "cut" / "log.jsonl").read_text().splitlines()]
    assert [r.get("loss") for r in log_full] == [r.get("loss") for r in log_cut]
    # the starting images' val and scale, logged
    assert set(log_full[0]) == {"iteration", "val_accuracy", "pixel_std_ratio"}
    assert [r["iteration"] for r in log_full] == list(range(7))


def test_existing_checkpoint_without_resume_is_refused(cache_root: Path, tmp_path: Path) -> None:
    cfg = tiny_config(iterations=2)
    condense(cfg, tmp_path / "a", CPU, cache_root=cache_root, progress=False)
    with pytest.raises(SatmError, match="--resume"):
        condense(cfg, tmp_path / "a", CPU, cache_root=cache_root, progress=False)


def test_resume_with_another_config_is_refused(cache_root: Path, tmp_path: Path) -> None:
    cfg = tiny_config(iterations=2)
    condense(cfg, tmp_path / "a", CPU, cache_root=cache_root, progress=False)
    with pytest.raises(SatmError, match="different config"):
        condense(
            replace(cfg, rho=0.123), tmp_path / "a", CPU, cache_root=cache_root, resume=True, progress=False
        )


def test_a_finished_run_extended_equals_a_fresh_longer_run(cache_root: Path, tmp_path: Path) -> None:
    cfg = tiny_config(iterations=4, checkpoint_every=2, eval_every=2)
    condense(cfg, tmp_path / "short", CPU, cache_root=cache_root, progress=False)
    longer = replace(cfg, iterations=6)
    condense(longer, tmp_path / "short", CPU, cache_root=cache_root, resume=True, progress=False)
    condense(longer, tmp_path / "fresh", CPU, cache_root=cache_root, progress=False)
    assert (tmp_path / "short" / TENSOR_FILE).read_bytes() == (tmp_path / "fresh" / TENSOR_FILE).read_bytes()
    assert _meta_without_timing(tmp_path / "short") == _meta_without_timing(tmp_path / "fresh")
    with pytest.raises(SatmError, match="past the 3"):  # shortening a run is refused, not truncated
        condense(replace(cfg, iterations=3), tmp_path / "short", CPU, cache_root=cache_root, resume=True)


def test_artifact_round_trip(cache_root: Path, tmp_path: Path) -> None:
    syn = condense(tiny_config(iterations=2), tmp_path / "a", CPU, cache_root=cache_root, progress=False)
    back = load_synthetic(tmp_path / "a")
    assert torch.equal(back.images, syn.images) and torch.equal(back.labels, syn.labels)
    assert back.lr == pytest.approx(syn.lr)
    assert back.labels.tolist() == list(range(10))
    assert back.meta["method"] == "satm" and back.meta["ipc"] == 1 and back.meta["image_shape"] == [1, 8, 8]
    assert len(back.as_dataset()) == 10
    pixels = back.pixels()
    assert pixels.min() >= 0 and pixels.max() <= 1


def test_corrupted_artifact_is_one_line_error(cache_root: Path, tmp_path: Path) -> None:
    condense(tiny_config(iterations=1), tmp_path / "a", CPU, cache_root=cache_root, progress=False)
    f = tmp_path / "a" / TENSOR_FILE
    data = bytearray(f.read_bytes())
    data[-5] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(SatmError, match="SHA-256") as err:
        load_synthetic(tmp_path / "a")
    assert "\n" not in str(err.value)
    (tmp_path / "a" / META_FILE).write_text("{not json")
    with pytest.raises(SatmError, match="unreadable metadata"):
        load_synthetic(tmp_path / "a")
    with pytest.raises(SatmError, match="not a synthetic set"):
        load_synthetic(tmp_path / "nowhere")


def test_non_finite_loss_stops_and_keeps_last_checkpoint(
    cache_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tiny_config(iterations=4, checkpoint_every=1)
    real = Condenser.hypergradients

    def nan_on_third(self: Condenser, st: State) -> tuple:
        res, gx, glr = real(self, st)
        return (res, gx * float("nan"), glr) if st.iteration == 2 else (res, gx, glr)

    monkeypatch.setattr(Condenser, "hypergradients", nan_on_third)
    out = tmp_path / "a"
    with pytest.raises(SatmError, match="non-finite loss or gradient at iteration 3") as err:
        condense(cfg, out, CPU, cache_root=cache_root, progress=False)
    assert "\n" not in str(err.value)
    ckpt = json.loads((out / "checkpoint.json").read_text())
    assert ckpt["iteration"] == 2  # the last good state is kept ...
    assert sha256_file(out / ckpt["tensors"]) == ckpt["sha256"]  # ... consistent on disk ...
    assert not (out / TENSOR_FILE).exists()  # ... and no artifact pretends the run finished
    monkeypatch.setattr(Condenser, "hypergradients", real)
    condense(cfg, out, CPU, cache_root=cache_root, resume=True, progress=False)  # and it resumes
    assert load_synthetic(out).meta["iterations"] == 4


def test_only_the_configured_number_of_experts_is_sampled(cache_root: Path, tmp_path: Path) -> None:
    """A store grown by another config (3 experts) must not change a 2-expert run."""
    cfg = tiny_config(iterations=3)
    a = condense(cfg, tmp_path / "a", CPU, cache_root=cache_root, progress=False)
    bigger = replace(cfg, expert=replace(cfg.expert, num_experts=3))
    condense(bigger, tmp_path / "big", CPU, cache_root=cache_root, progress=False)
    b = condense(cfg, tmp_path / "b", CPU, cache_root=cache_root, progress=False)
    assert torch.equal(a.images, b.images)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"eval_runs": 0}, "eval_runs and eval_epochs"),
        ({"batch_syn": 0}, "batch_syn"),
        ({"lr_img": -1.0}, "lr_img"),
        ({"truncate": 0}, "truncate"),
        ({"max_start_epoch": 99}, "exceeds the experts"),
        ({"lr_grad": "magic"}, "lr_grad"),
    ],
)
def test_bad_config_values_are_one_line_errors(change: dict, message: str) -> None:
    with pytest.raises(SatmError, match=message) as err:
        tiny_config(**change)
    assert "\n" not in str(err.value)


def test_checkpoint_missing_keys_is_one_line_error(cache_root: Path, tmp_path: Path) -> None:
    cfg = tiny_config(iterations=2)
    condense(cfg, tmp_path / "a", CPU, cache_root=cache_root, progress=False)
    (tmp_path / "a" / "checkpoint.json").write_text(json.dumps({"config": cfg.to_dict()}))
    with pytest.raises(SatmError, match="unreadable checkpoint"):
        condense(cfg, tmp_path / "a", CPU, cache_root=cache_root, resume=True, progress=False)


def test_kernels_are_recorded_and_a_resume_on_other_kernels_is_warned_about(
    cache_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Float results depend on the kernels (AVX2 vs AVX-512, a GPU): the artifact, the experts and the
    checkpoint say which ran, and resuming a checkpoint carried to another kind of machine says its bytes will
    differ."""
    here = f"cpu:{torch.backends.cpu.get_cpu_capability()}"
    cfg = tiny_config(iterations=4, checkpoint_every=2, eval_every=2)
    condense(replace(cfg, iterations=2), tmp_path / "a", CPU, cache_root=cache_root, progress=False)
    assert json.loads((tmp_path / "a" / META_FILE).read_text())["compute"]["kernels"] == here
    ckpt = tmp_path / "a" / "checkpoint.json"
    meta = json.loads(ckpt.read_text())
    assert meta["kernels"] == here
    stores = list((cache_root / "experts").glob("*/manifest.json"))
    entries = [e for s in stores for e in json.loads(s.read_text())["experts"].values()]
    assert entries and all(e["kernels"] == here for e in entries)
    longer = replace(cfg, iterations=3)
    condense(longer, tmp_path / "a", CPU, cache_root=cache_root, resume=True, progress=False)
    assert "resumes on" not in caplog.text  # same machine: nothing to say
    ckpt.write_text(json.dumps({**json.loads(ckpt.read_text()), "kernels": "cpu:AVX2-elsewhere"}))
    condense(cfg, tmp_path / "a", CPU, cache_root=cache_root, resume=True, progress=False)
    assert f"was made on cpu:AVX2-elsewhere and resumes on {here}" in caplog.text


def test_a_run_off_set_is_flagged_and_its_health_stored(
    cache_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An image step far too large drives the images off the real images' scale: the artifact says by how
    much (`health`) and the run warns; a normal run stores its health without a warning."""
    cfg = tiny_config(iterations=2, eval_every=0)
    plain = condense(cfg, tmp_path / "plain", CPU, cache_root=cache_root, progress=False)
    assert plain.meta["health"]["pixel_std_ratio"] < 3 and "pixel std" not in caplog.text
    blown = condense(replace(cfg, lr_img=100 * cfg.lr_img), tmp_path / "blown", CPU, cache_root=cache_root,
                     progress=False)
    assert blown.meta["health"]["pixel_std_ratio"] > 3
    assert blown.meta["health"]["lr_ratio"] > 0.1 and "learned LR fell" not in caplog.text
    assert f"{tmp_path / 'blown'}: images ended at" in caplog.text


def test_select_healthy_never_keeps_a_run_off_iteration(
    cache_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With an image step that runs the images off (above) and a val score that rises every iteration, the
    plain rule keeps the last, run-off iteration; `select_healthy` keeps the best one within the limits. Both
    runs log every validated iteration with its pixel std ratio, and run alike."""
    monkeypatch.setattr(Condenser, "validate", lambda self, st: float(st.iteration))
    cfg = tiny_config(iterations=3, eval_every=1, lr_img=100 * tiny_config().lr_img)
    made, logs = {}, {}
    for guard in (False, True):
        made[guard] = condense(replace(cfg, select_healthy=guard), tmp_path / str(guard), CPU,
                               cache_root=cache_root, progress=False)
        lines = (tmp_path / str(guard) / "log.jsonl").read_text().splitlines()
        logs[guard] = [{k: v for k, v in json.loads(line).items() if k not in ("seconds", "peak_mem_mb")}
                       for line in lines]
    assert logs[False] == logs[True]
    ratios = {r["iteration"]: r["pixel_std_ratio"] for r in logs[True] if "val_accuracy" in r}
    assert sorted(ratios) == [0, 1, 2, 3] and ratios[0] < 3 and ratios[3] > 3
    assert made[False].meta["selection"]["iteration"] == 3
    assert made[False].meta["health"]["pixel_std_ratio"] > 3
    healthy = max(i for i, r in ratios.items() if r < 3)
    kept = made[True].meta["selection"]
    assert kept["iteration"] == healthy and made[True].meta["health"]["pixel_std_ratio"] < 3
    assert kept["rule"] == "best val accuracy among healthy iterations"


def test_select_healthy_needs_validation() -> None:
    with pytest.raises(SatmError, match="select_healthy picks among validated iterations"):
        tiny_config(eval_every=0, select_healthy=True)
