"""The continual grid (one job per memory x class order) writes the same bytes in process and on workers."""

from __future__ import annotations

import json
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
    rows = [json.loads(line) for line in one.splitlines()]
    order = list(dict.fromkeys((r["method"], r["seed"]) for r in rows))
    # every (memory, order) recorded once, as one block, in grid order
    assert order == [("random", 0), ("random", 1), ("reservoir", 0), ("reservoir", 1)]
    assert len(rows) == 4 * sum((r["method"], r["seed"]) == order[0] for r in rows)


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


def test_an_offline_set_made_before_the_grid_trains_its_experts_on_the_grid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the grid starts its cores are free: a missing offline SATM set gets the grid for its experts."""
    import satm_cl.condense as condense_pkg
    from satm_cl.errors import SatmError

    seen: list[object] = []

    def fake(*args: object, executor: object = None, **kwargs: object) -> None:
        seen.append(executor)
        raise SatmError("stop here")

    monkeypatch.setattr(condense_pkg, "condense", fake)
    for grid in (ExecConfig(jobs=2), ExecConfig()):
        req = ContinualRequest(memories=("satm",), orders=1, out=tmp_path / str(grid.jobs), device="cpu",
                               cache_dir=tmp_path / "cache", progress=False)
        with pytest.raises(SatmError, match="stop here"):
            run_continual(req, grid)
    assert seen == [ExecConfig(jobs=2), None]


def test_rows_committed_out_of_order_go_back_to_grid_order(
    tmp_path: Path, artifacts: dict[str, Path]
) -> None:
    """Workers commit each (memory, order) as it finishes; a run that was killed before its first job ended
    leaves the later ones ahead of it. The next run puts them back: the same bytes as one run never killed."""

    def req(out: Path) -> ContinualRequest:
        return ContinualRequest(memories=("random", "reservoir"), orders=2, out=out, device="cpu",
                                synthetic=artifacts, epochs=1, progress=False)

    whole = run_continual(req(tmp_path / "whole")).read_text()
    lines = whole.splitlines(keepends=True)
    first = [x for x in lines if (json.loads(x)["method"], json.loads(x)["seed"]) == ("random", 0)]
    shuffled = tmp_path / "killed"
    shuffled.mkdir()
    (shuffled / "records.jsonl").write_text("".join([*(x for x in lines if x not in first), *first]))
    assert run_continual(req(shuffled)).read_text() == whole
