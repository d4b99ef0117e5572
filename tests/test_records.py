"""RecordWriter.reorder: a grid's rows go back to the grid's order within the lines they hold, other lines
stay put, a torn tail is never moved, and a writer that waited on the lock during a reorder still appends
to the file (not to the replaced one)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from satm_cl.records import Record, RecordWriter, read_records


def _rec(method: str, seed: int, value: float = 1.0, metric: str = "m") -> Record:
    return {"stage": "s", "method": method, "dataset": "d", "ipc": 1, "arch": "a", "seed": seed,
            "metric": metric, "value": value}


def _rank(order: list[tuple[str, int]]) -> Any:
    def rank(rec: Record) -> tuple[int, ...] | None:
        key = (rec["method"], rec["seed"])
        return (order.index(key),) if key in order else None

    return rank


def _keys(path: Path) -> list[tuple[str, int]]:
    return [(r["method"], r["seed"]) for r in read_records(path)]


def test_reorder_sorts_the_grids_rows_within_their_lines_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    writer = RecordWriter(path)
    # another run's row first, then this grid's jobs as they finished (2 before 1), another run's row between
    for method, seed in [("other", 0), ("g", 0), ("g", 2), ("other", 1), ("g", 1)]:
        writer.write([_rec(method, seed)])
    writer.reorder(_rank([("g", 0), ("g", 1), ("g", 2)]))
    assert _keys(path) == [("other", 0), ("g", 0), ("g", 1), ("other", 1), ("g", 2)]


def test_reorder_of_an_ordered_file_does_not_rewrite_it(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    writer = RecordWriter(path)
    writer.write([_rec("g", 0), _rec("g", 1)])
    inode = path.stat().st_ino
    writer.reorder(_rank([("g", 0), ("g", 1)]))
    assert path.stat().st_ino == inode  # not replaced


def test_reorder_is_stable_within_one_rank_and_leaves_a_torn_tail_last(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    writer = RecordWriter(path)
    writer.write([_rec("g", 1, 1.0, "m1"), _rec("g", 1, 2.0, "m2"), _rec("g", 0, 3.0)])
    with path.open("a") as fh:
        fh.write('{"stage": "s", "meth')  # a writer killed mid-append
    writer.reorder(_rank([("g", 0), ("g", 1)]))
    lines = path.read_text().splitlines(keepends=True)
    assert [json.loads(line)["value"] for line in lines[:3]] == [3.0, 1.0, 2.0]
    assert lines[3] == '{"stage": "s", "meth'


def test_a_writer_waiting_during_a_reorder_appends_to_the_new_file(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    first = RecordWriter(path)
    first.write([_rec("g", 1), _rec("g", 0)])
    second = RecordWriter(path)
    started = threading.Event()
    appender = threading.Thread(target=lambda: (started.set(), second.write([_rec("late", 0)])))

    def rank(rec: Record) -> tuple[int, ...] | None:
        if not started.is_set():  # the reorder holds the lock: the appender opens the old file and waits
            appender.start()
            started.wait()
            time.sleep(0.3)
        return (rec["seed"],) if rec["method"] == "g" else None

    first.reorder(rank)
    appender.join(timeout=30)
    assert _keys(path) == [("g", 0), ("g", 1), ("late", 0)]


def test_reorder_keeps_the_files_mode_and_a_failed_rewrite_loses_nothing(
    tmp_path: Path, monkeypatch: Any, caplog: Any
) -> None:
    path = tmp_path / "records.jsonl"
    writer = RecordWriter(path)
    writer.write([_rec("g", 1), _rec("g", 0)])
    path.chmod(0o640)
    before = path.read_text()

    def full_disk(*_: Any) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr("satm_cl.records.os.replace", full_disk)
        writer.reorder(_rank([("g", 0), ("g", 1)]))
    assert path.read_text() == before and "rows left in the order their jobs finished" in caplog.text
    assert [p.name for p in tmp_path.iterdir()] == ["records.jsonl"]  # no temporary left behind
    writer.reorder(_rank([("g", 0), ("g", 1)]))
    assert _keys(path) == [("g", 0), ("g", 1)] and path.stat().st_mode & 0o777 == 0o640
