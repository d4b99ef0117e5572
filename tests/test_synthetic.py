"""Loading a SyntheticSet refuses garbage with a valid checksum: non-finite images, bad LR, bad fields."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from satm_cl.baselines import create_baseline
from satm_cl.cli import app
from satm_cl.errors import SatmError
from satm_cl.synthetic import META_FILE, SyntheticSet, load_synthetic


@pytest.fixture(scope="module")
def good() -> SyntheticSet:
    return create_baseline("random", "digits", 1)


def test_round_trip(good: SyntheticSet, tmp_path: Path) -> None:
    back = load_synthetic(good.save(tmp_path / "set"))
    assert torch.equal(back.images, good.images) and back.lr == pytest.approx(good.lr)


def test_lr_in_memory_is_the_lr_a_reload_reads(good: SyntheticSet, tmp_path: Path) -> None:
    """A fresh set records the same config.lr as its reloaded copy (the artifact keeps lr as float32)."""
    fresh = dataclasses.replace(good, lr=0.05)
    assert fresh.lr != 0.05  # 0.05 is not a float32 value: held as float32's nearest
    assert load_synthetic(fresh.save(tmp_path / "set")).lr == fresh.lr


def test_nan_pixels_with_a_valid_checksum_are_refused(good: SyntheticSet, tmp_path: Path) -> None:
    images = good.images.clone()
    images[0, 0, 0, 0] = float("nan")
    art = dataclasses.replace(good, images=images).save(tmp_path / "nan")  # save() writes a true SHA-256
    with pytest.raises(SatmError, match="NaN or infinite") as info:
        load_synthetic(art)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("lr", [float("nan"), float("inf"), 0.0, -0.01])
def test_bad_learned_lr_is_refused(good: SyntheticSet, tmp_path: Path, lr: float) -> None:
    art = dataclasses.replace(good, lr=lr).save(tmp_path / "lr")
    with pytest.raises(SatmError, match="learned lr"):
        load_synthetic(art)


@pytest.mark.parametrize(
    ("field", "value"),
    [("class_names", 5), ("ipc", "one"), ("image_shape", [1, 8]), ("std", [0.0]), ("mean", ["x"])],
)
def test_malformed_metadata_fields_are_named(
    good: SyntheticSet, tmp_path: Path, field: str, value: object
) -> None:
    art = good.save(tmp_path / "meta")
    meta = json.loads((art / META_FILE).read_text())
    meta[field] = value
    (art / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(SatmError, match=f"invalid {field}"):
        load_synthetic(art)


def test_evaluate_refuses_a_nan_artifact_and_records_nothing(good: SyntheticSet, tmp_path: Path) -> None:
    images = good.images.clone()
    images[3] = float("nan")
    art = dataclasses.replace(good, images=images).save(tmp_path / "nan")
    out = tmp_path / "eval"
    res = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--synthetic",
            str(art),
            "--runs",
            "1",
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 2, res.output
    assert res.stderr.count("\n") == 1 and "NaN or infinite" in res.stderr
    assert not (out / "records.jsonl").exists()


def test_edited_ipc_that_the_images_do_not_have_is_refused(good: SyntheticSet, tmp_path: Path) -> None:
    """The checksum covers the tensors only: an `ipc` edited in the metadata must still match the images."""
    art = good.save(tmp_path / "ipc")
    meta = json.loads((art / META_FILE).read_text())
    meta["ipc"] = 2
    (art / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(SatmError, match="metadata says ipc 2 but the images hold 1 per class"):
        load_synthetic(art)


@pytest.mark.parametrize(
    ("ipc", "selection", "shown_ipc", "shown_selection"),
    [
        (  # no validation ran: the last images kept, nothing measured
            1,
            {"rule": "last iteration", "iteration": -1, "val_accuracy": -1.0},
            1,
            {"rule": "last iteration", "iteration": "n/a", "val_accuracy": "n/a"},
        ),
        (  # a starting set: its iteration 0 is real, its val accuracy was never measured
            1,
            {"rule": "starting images", "iteration": 0, "val_accuracy": None},
            1,
            {"rule": "starting images", "iteration": 0, "val_accuracy": "n/a"},
        ),
        (  # the whole train split stores ipc -1
            -1,
            {"rule": "best val accuracy", "iteration": 100, "val_accuracy": 94.4},
            "full data",
            {"rule": "best val accuracy", "iteration": 100, "val_accuracy": 94.4},
        ),
    ],
)
def test_show_prints_sentinels_as_words_and_keeps_the_file(
    good: SyntheticSet,
    tmp_path: Path,
    ipc: int,
    selection: dict[str, object],
    shown_ipc: object,
    shown_selection: dict[str, object],
) -> None:
    """`show` says "n/a" / "full data" where synthetic.json stores -1 or null, never -1 as a number; `show
    --json` gives null there, so each field keeps one type (a number or null, never a word)."""
    meta = {**good.meta, "ipc": ipc, "selection": selection}
    art = dataclasses.replace(good, meta=meta).save(tmp_path / "a")
    on_disk = (art / META_FILE).read_text()
    res = CliRunner().invoke(app, ["show", str(art), "--out", str(tmp_path / "grid.png")])
    assert res.exit_code == 0, res.output
    lines = dict(line.split(": ", 1) for line in res.stdout.splitlines())
    assert lines["ipc"] == str(shown_ipc)
    assert set(lines["selection"].split("; ")) == {f"{k} = {v}" for k, v in shown_selection.items()}
    assert lines["method"] == good.meta["method"] and lines["grid"] == str(tmp_path / "grid.png")
    res = CliRunner().invoke(app, ["show", str(art), "--out", str(tmp_path / "grid.png"), "--json"])
    assert res.exit_code == 0, res.output
    shown = json.loads(res.stdout)
    nulls = {k: None if v in ("n/a", "full data") else v for k, v in shown_selection.items()}
    assert shown["ipc"] == (None if shown_ipc == "full data" else shown_ipc) and shown["selection"] == nulls
    assert isinstance(shown["lr"], float) and shown["seed"] == good.meta["seed"]
    assert (art / META_FILE).read_text() == on_disk  # the on-disk format is unchanged
