"""Shared fixtures: a tiny expert store on digits (seconds to train) and a single-thread torch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    """One intra-op thread: tiny batches gain nothing from threads, and CI shares two cores."""
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session-wide cache so the tiny experts are trained once."""
    return tmp_path_factory.mktemp("cache")
