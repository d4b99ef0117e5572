"""The continual grid (one job per memory x class order) writes the same bytes in process and on workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from satm_cl.continual import ContinualRequest, run_continual
from satm_cl.execution import ExecConfig


@pytest.mark.slow  # spawned workers each import avalanche: ~70 s on the busy 2-core machine
def test_same_records_in_process_and_on_two_workers(tmp_path: Path, artifacts: dict[str, Path]) -> None:
    def text(out: Path, grid: ExecConfig) -> str:
        req = ContinualRequest(
            memories=("random", "reservoir"),
            orders=2,
            out=out,
            device="cpu",
            synthetic=artifacts,
            epochs=2,
            progress=False,
        )
        return run_continual(req, grid).read_text()

    one = text(tmp_path / "one", ExecConfig())
    assert one == text(tmp_path / "two", ExecConfig(jobs=2))
    assert one.count("\n") == 2 * 2 * 21  # every (memory, order) recorded once, in grid order


def test_the_grid_shows_one_tick_per_memory_and_order(
    tmp_path: Path, artifacts: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Run on workers, a continual grid still shows progress: a stream memory's job can take hours."""
    req = ContinualRequest(
        memories=("random",),
        orders=2,
        out=tmp_path,
        device="cpu",
        synthetic=artifacts,
        epochs=1,
        progress=True,
    )
    run_continual(req)
    last = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith("continual digits ipc1 retrain") and "2/2" in last
