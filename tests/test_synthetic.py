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
