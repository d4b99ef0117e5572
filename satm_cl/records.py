"""Tidy records: one JSON object per line, appended; a rerun skips rows whose key is already present.

A record holds at least `stage` (the suite: in-domain, cross-arch, ood, continual), `method`,
`dataset`, `ipc`, `arch`, `seed`, `metric` and `value`; suites add their own keys (e.g. `step`,
`eval_step`, `test_dataset`) and a `config` dict with what produced the number. Continual `step`
(experiences trained so far) and `eval_step` (the experience evaluated) are both 1-based.
"""

from __future__ import annotations

import json
import logging
import math
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from satm_cl.errors import SatmError
from satm_cl.io import make_out_dir

log = logging.getLogger(__name__)

REQUIRED = ("stage", "method", "dataset", "ipc", "arch", "seed", "metric", "value")
# Keys that identify a measurement; everything else (value, config, timings) is payload.
KEY_FIELDS = (
    "stage",
    "method",
    "dataset",
    "ipc",
    "arch",
    "seed",
    "metric",
    "step",
    "eval_step",
    "test_dataset",
    "lr_protocol",
)
# Identity of a key field a record lacks (records written before `lr_protocol` existed were `learned`).
KEY_DEFAULTS: dict[str, Any] = {"lr_protocol": "learned"}

Record = dict[str, Any]


def record_key(rec: Mapping[str, Any]) -> tuple[Any, ...]:
    """The identity of a record: the KEY_FIELDS it has (missing ones count as KEY_DEFAULTS, else None)."""
    return tuple(rec.get(k, KEY_DEFAULTS.get(k)) for k in KEY_FIELDS)


def read_records(path: str | Path) -> list[Record]:
    """Read a records file; a malformed line is a one-line error naming file and line."""
    path = Path(path)
    if path.is_dir():  # an evaluate --out directory: its records file
        if not (path / "records.jsonl").is_file():
            raise SatmError(f"{path} is a directory without a records.jsonl")
        path = path / "records.jsonl"
    if not path.is_file():
        raise SatmError(f"records file not found: {path}")
    out: list[Record] = []
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise SatmError(f"cannot read records file {path}: {exc}") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            torn = lineno == len(text.splitlines()) and not text.endswith("\n")
            hint = " (a torn last line: rerun the command that wrote it, which mends it)" if torn else ""
            raise SatmError(f"{path}:{lineno}: not a JSON record{hint}") from None
        if not isinstance(rec, dict) or any(k not in rec for k in REQUIRED):
            missing = [k for k in REQUIRED if not isinstance(rec, dict) or k not in rec]
            raise SatmError(f"{path}:{lineno}: record lacks {', '.join(missing)}")
        bad = [k for k, ok in _field_types(rec).items() if not ok]
        if bad:
            raise SatmError(f"{path}:{lineno}: record has a malformed {', '.join(bad)}")
        out.append(rec)
    return out


def _field_types(rec: Mapping[str, Any]) -> dict[str, bool]:
    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    return {
        **{k: isinstance(rec[k], str) for k in ("stage", "method", "dataset", "arch", "metric")},
        "ipc": rec["ipc"] is None or is_int(rec["ipc"]),
        "seed": is_int(rec["seed"]),
        "value": rec["value"] is None
        or (isinstance(rec["value"], int | float) and not isinstance(rec["value"], bool)),
    }


def mend_torn_tail(path: Path) -> None:
    """A kill in the middle of an append can leave a last line without its newline: complete it if it is a
    whole record, else drop it (it was never a finished measurement, and the rerun measures it again)."""
    if not path.is_file():
        return
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return
    start = data.rfind(b"\n") + 1
    try:
        whole = isinstance(json.loads(data[start:]), dict)
    except ValueError:
        whole = False
    with path.open("r+b") as fh:
        if whole:
            fh.seek(len(data))
            fh.write(b"\n")
        else:
            fh.truncate(start)
        fh.flush()
        os.fsync(fh.fileno())


@contextmanager
def _locked(fh: IO[str]) -> Iterator[None]:
    """An exclusive advisory lock on an open file (POSIX; a no-op where fcntl is missing)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover
        yield
        return
    fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _records_from(path: Path) -> list[Record]:
    """The file's whole records, skipping lines that do not parse (a writer's torn tail, mended on reopen)."""
    out = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


class RecordWriter:
    """Appends records to `<out>/records.jsonl`, flushing each line so an interruption loses nothing."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        make_out_dir(self.path.parent)
        if self.path.exists():
            with self._append_locked():  # not while another process's `reorder` replaces the file
                mend_torn_tail(self.path)
        self._seen = {record_key(r) for r in read_records(self.path)} if self.path.exists() else set()

    def has(self, **key: Any) -> bool:
        """True if a record with this identity was already written (so a runner can skip the work)."""
        return record_key(key) in self._seen

    def write(self, records: Iterable[Record]) -> None:
        """Append records not yet present; NaN values are stored as null. Under an exclusive lock, rows
        another process appended since we read the file count as present: concurrent runs never duplicate."""
        with self._append_locked() as fh:
            self._seen |= {record_key(r) for r in _records_from(self.path)}
            for rec in records:
                missing = [k for k in REQUIRED if k not in rec]
                if missing:
                    raise ValueError(f"record lacks {missing}")
                key = record_key(rec)
                if key in self._seen:
                    continue
                value = rec["value"]
                clean = {**rec, "value": None if isinstance(value, float) and math.isnan(value) else value}
                fh.write(json.dumps(clean, sort_keys=True) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
                self._seen.add(key)

    def reorder(self, rank: Callable[[Record], tuple[int, ...] | None]) -> None:
        """Sort the records `rank` places (stably, by rank) within the lines they occupy; every other line
        stays where it is. Grids commit each job's records as the job finishes, so a slow job never holds
        finished ones back from disk; the runner then restores its grid's order, so the file's bytes do not
        depend on the worker count, the executor, or where an earlier run was interrupted."""
        if not self.path.exists():
            return
        with self._append_locked():
            lines = self.path.read_text().splitlines(keepends=True)
            ranked = []
            for i, line in enumerate(lines):
                try:  # a torn tail (no newline yet) is never moved: `mend_torn_tail` finishes it
                    rec = json.loads(line) if line.endswith("\n") else None
                except ValueError:
                    rec = None
                place = rank(rec) if isinstance(rec, dict) else None
                if place is not None:
                    ranked.append((place, i))
            new = list(lines)
            for (_, slot), (_, i) in zip(sorted(ranked, key=lambda t: t[1]), sorted(ranked), strict=True):
                new[slot] = lines[i]
            if new == lines:
                return
            tmp = self.path.with_name(f".{self.path.name}.reorder")
            try:
                with tmp.open("w") as out:
                    out.write("".join(new))
                    out.flush()
                    os.fsync(out.fileno())
                os.chmod(tmp, stat.S_IMODE(self.path.stat().st_mode))
                os.replace(tmp, self.path)  # whole or not at all; writers waiting on the old file reopen
            except OSError as exc:  # the rows are all there, only not in grid order: say so, lose nothing
                tmp.unlink(missing_ok=True)
                log.warning("%s: rows left in the order their jobs finished (%s)", self.path, exc)

    @contextmanager
    def _append_locked(self) -> Iterator[IO[str]]:
        """The file opened for appending, under its exclusive lock. If a `reorder` replaced the file while we
        waited for the lock, our handle points at the old one, where an append would be lost: reopen."""
        while True:
            with self.path.open("a") as fh, _locked(fh):
                if os.fstat(fh.fileno()).st_ino == os.stat(self.path).st_ino:
                    yield fh
                    return
