"""An explicit data directory is honoured or refused, never silently passed over for another location."""

from __future__ import annotations

from pathlib import Path

import pytest
from _fake_data import write_fashion_mnist

from satm_cl.data import create_dataset, dataset_status
from satm_cl.data import fashion_mnist as fm
from satm_cl.errors import SatmError


@pytest.fixture
def system_fashion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake 'system' Fashion-MNIST install, so the dataset is found elsewhere than --data-dir."""
    system = write_fashion_mnist(tmp_path / "system")
    monkeypatch.setattr(fm, "SYSTEM_DIRS", (system,))
    return system


def test_missing_data_dir_is_refused_even_when_the_dataset_is_found_elsewhere(
    system_fashion: Path, tmp_path: Path
) -> None:
    assert create_dataset("fashion-mnist").num_classes == 10  # found in the system location
    missing = tmp_path / "typo"
    for call in (
        lambda: create_dataset("fashion-mnist", data_dir=missing),
        lambda: dataset_status("digits", missing),
    ):
        with pytest.raises(SatmError, match=f"--data-dir {missing} does not exist"):
            call()
    with pytest.raises(SatmError, match="does not exist"):
        create_dataset("digits", data_dir=missing)


def test_data_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(SatmError, match="is not a directory"):
        create_dataset("digits", data_dir=tmp_path / "f")


def test_an_existing_data_dir_without_the_files_says_the_system_copy_is_used(
    system_fashion: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A mistyped --data-dir that happens to exist must not go unnoticed when the system copy is read."""
    empty = tmp_path / "empty"
    empty.mkdir()
    with caplog.at_level("WARNING"):
        create_dataset("fashion-mnist", data_dir=empty)
    assert f"fashion-mnist is not in --data-dir {empty}; using {system_fashion}" in caplog.text
    assert dataset_status("fashion-mnist", empty).startswith("ready (fashion-mnist is not in --data-dir")
    caplog.clear()
    with caplog.at_level("WARNING"):
        create_dataset("fashion-mnist", data_dir=system_fashion)
    assert caplog.text == "" and dataset_status("fashion-mnist", system_fashion) == "ready"
