"""Continual tests: on digits, with small fake SyntheticSets built from real train images."""

from __future__ import annotations

from pathlib import Path

import pytest
from _continual_fixtures import FakeSet, fake_set

from satm_cl.data import DatasetSplits, create_dataset
from satm_cl.synthetic import SyntheticSet


@pytest.fixture(scope="session")
def digits() -> DatasetSplits:
    return create_dataset("digits")


@pytest.fixture()
def make_fake(digits: DatasetSplits) -> FakeSet:
    def build(**kw: object) -> SyntheticSet:
        return fake_set(digits, **kw)  # type: ignore[arg-type]

    return build


@pytest.fixture(scope="session")
def artifacts(digits: DatasetSplits, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Saved fake artifacts for every set-backed memory (ipc 1), so runs never condense or select."""
    root = tmp_path_factory.mktemp("artifacts")
    return {name: fake_set(digits, method=name, offset=k).save(root / name)
            for k, name in enumerate(("satm", "mtt", "random", "herding"))}
