"""Progress bars: plain tqdm in the driver; in grid workers, prefixed whole lines at most every N seconds."""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterator

import pytest

import satm_cl.progress as progress
from satm_cl.errors import SatmError
from satm_cl.execution import ExecConfig, Job, call_job, run_jobs


@pytest.fixture(autouse=True)
def _driver_mode() -> Iterator[None]:
    yield
    progress._line_prefix, progress._line_every = None, progress.LINE_EVERY_S
    progress.warning_lines()


def count_with_a_bar(n: int) -> int:
    """A grid job (module level, so spawned workers can import it) that runs one progress bar."""
    total = 0
    for i in progress.progress_bar(range(n), desc="counting"):
        total += i
    return total


def count_and_warn(n: int) -> int:
    """A grid job that runs a progress bar and logs a package warning, as the runners do."""
    logging.getLogger("satm_cl.continual.runner").warning("job %d warns", n)
    return count_with_a_bar(n)


def test_line_mode_writes_prefixed_whole_lines(capsys: pytest.CaptureFixture[str]) -> None:
    progress.line_mode("[job 1]", every=0.0)
    assert count_with_a_bar(3) == 3
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines and all(line.startswith("[job 1] counting") for line in lines)
    assert "\r" not in err and "3/3" in lines[-1]


def test_a_bar_younger_than_the_interval_stays_silent(capsys: pytest.CaptureFixture[str]) -> None:
    progress.line_mode("[job 1]", every=3600.0)
    count_with_a_bar(3)
    assert capsys.readouterr().err == ""


def test_the_interval_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(progress.EVERY_ENV, "12.5")
    progress.line_mode("[x]")
    assert progress._line_every == 12.5
    monkeypatch.setenv(progress.EVERY_ENV, "soon")
    with pytest.raises(SatmError, match="number of seconds"):
        progress.line_mode("[x]")


def test_in_the_driver_bars_are_plain_tqdm(capsys: pytest.CaptureFixture[str]) -> None:
    count_with_a_bar(3)
    err = capsys.readouterr().err
    assert "counting" in err and "[" not in err.split("counting")[0]  # a bar, and no job prefix


def test_a_warning_during_a_bar_gets_a_line_of_its_own(capsys: pytest.CaptureFixture[str]) -> None:
    """In the driver, a warning logged while a bar is drawn does not run on from the bar's text."""
    progress.warning_lines()
    for i in progress.progress_bar(range(3), desc="counting", mininterval=0):
        if i == 2:
            logging.getLogger("satm_cl.continual.runner").warning("not learned")
    pieces = [p.strip() for p in re.split(r"[\r\n]", capsys.readouterr().err)]
    assert "warning: not learned" in pieces, pieces


def test_call_job_with_a_label_puts_the_worker_in_line_mode() -> None:
    assert call_job(count_with_a_bar, 4, 1, "continual satm order 0") == (True, 6)
    assert progress._line_prefix == "[continual satm order 0]"


def test_a_labelled_job_prints_package_warnings_as_labelled_lines(capsys: pytest.CaptureFixture[str]) -> None:
    """A worker reuses its handler: each job's warnings carry that job's label, never an earlier one's."""
    for label in ("job a", "job b"):
        assert call_job(count_and_warn, 2, 1, label) == (True, 1)
    want = ["[job a] warning: job 2 warns", "[job b] warning: job 2 warns"]
    assert capsys.readouterr().err.splitlines() == want


def test_pool_workers_report_their_bars_and_warnings_as_labelled_lines(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(progress.EVERY_ENV, "0")  # spawned workers inherit it
    jobs = [Job(f"job {n}", count_and_warn, n) for n in (3, 4)]
    results = run_jobs(jobs, ExecConfig(jobs=2))
    assert [r.value for r in results] == [3, 6]
    lines = capfd.readouterr().err.splitlines()
    for n in (3, 4):
        assert any(line.startswith(f"[job {n}] counting") and f"{n}/{n}" in line for line in lines)
        assert f"[job {n}] warning: job {n} warns" in lines  # not bare, as the last-resort handler prints


def test_a_long_bar_writes_its_last_state_when_it_closes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between draws spaced by the interval, the final state (tqdm's close, with no flush after it) still
    comes out once the bar has lived the interval."""
    # the bar is born at 0; its first draw comes at 46 s (written), its final one at 48 s (too soon after)
    clock = itertools.chain([0.0], itertools.count(46.0))
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    progress.line_mode("[job]", every=50.0)
    for _ in progress.progress_bar(range(3), desc="slow"):
        pass
    lines = capsys.readouterr().err.splitlines()
    assert [line.split("|")[0].split()[-1] for line in lines] == ["0%", "100%"]
    assert all(line.startswith("[job] slow") for line in lines) and "3/3" in lines[-1]


def test_a_bad_interval_is_refused_before_any_job(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(progress.EVERY_ENV, "-1")
    with pytest.raises(SatmError, match="number of seconds"):
        run_jobs([Job("job", count_with_a_bar, 3)], ExecConfig(jobs=2))
