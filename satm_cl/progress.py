"""Progress bars for long loops: tqdm bars on a terminal, and in a grid worker (`--jobs N`, Ray) one line
per live bar every few minutes, prefixed with the job's label, so a grid that runs for hours says where each
job is without workers overwriting each other's bars."""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm
from tqdm.std import tqdm as std_tqdm

from satm_cl.errors import SatmError

LINE_EVERY_S = 300.0  # default seconds between a worker's lines for one bar
EVERY_ENV = "SATM_CL_PROGRESS_EVERY"  # overrides it (seconds)
_line_prefix: str | None = None  # set in grid workers by `line_mode`
_line_every = LINE_EVERY_S


def line_every() -> float:
    """Seconds between a worker's lines: $SATM_CL_PROGRESS_EVERY, else 300 (a bad value: one clear error)."""
    raw = os.environ.get(EVERY_ENV, str(LINE_EVERY_S))
    try:
        every = float(raw)
    except ValueError:
        every = -1.0
    if not every >= 0:
        raise SatmError(f"{EVERY_ENV} must be a number of seconds >= 0, got {raw!r}")
    return every


class _WarningLines(logging.Handler):
    """The package's warnings as `warning: ...` lines on the current stderr, after a grid job's label in a
    worker (Python's last-resort handler prints them bare, so they read like output)."""

    def __init__(self, prefix: str) -> None:
        super().__init__(logging.WARNING)
        self.prefix = prefix

    def emit(self, record: logging.LogRecord) -> None:
        text = f"{self.prefix}{record.levelname.lower()}: {record.getMessage()}"
        if _line_prefix is None:  # the driver's terminal: a line of its own above the live bars
            tqdm.write(text, file=sys.stderr)
        else:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()


def warning_lines(prefix: str = "") -> None:
    """From now on in this process, the package's log warnings print as `<prefix>warning: ...` lines on
    stderr: one handler per process, whose prefix the latest call sets (a pool worker runs many jobs)."""
    pkg = logging.getLogger("satm_cl")
    for handler in pkg.handlers:
        if isinstance(handler, _WarningLines):
            handler.prefix = prefix
            return
    pkg.addHandler(_WarningLines(prefix))


def line_mode(prefix: str, every: float | None = None) -> None:
    """From now on in this process, bars write whole lines `prefix <bar>` to stderr at most every `every`
    seconds (default: $SATM_CL_PROGRESS_EVERY, else 300), and only once they have lived that long (short
    loops stay silent)."""
    global _line_prefix, _line_every
    _line_prefix, _line_every = prefix, line_every() if every is None else every


_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # tqdm's cursor moves between nested bars


class _Lines:
    """A file for tqdm that turns one bar's draws into prefixed lines: at most one per `every` seconds (a
    postfix update redraws at once, so the spacing is kept here), and the last draw when the bar closes."""

    def __init__(self, prefix: str, every: float) -> None:
        self.prefix, self.every, self._buf, self._text, self._shown = prefix, every, "", "", True
        self.born = self.last = time.monotonic()

    def write(self, s: str) -> int:
        self._buf += s
        return len(s)

    def flush(self) -> None:
        raw, self._buf = self._buf, ""
        text = _ESCAPE.sub("", raw).replace("\r", "").strip()
        if text:
            self._text, self._shown = text, False
        # tqdm spaces its draws by `every` on its own clock: a little slack keeps them from being skipped
        if time.monotonic() - self.last >= 0.9 * self.every:
            self.show()

    def show(self) -> None:
        """Write the last draw unless it was written already or the bar is younger than `every`."""
        now = time.monotonic()
        if self._shown or not self._text or now - self.born < 0.9 * self.every:
            return
        self.last, self._shown = now, True
        sys.stderr.write(f"{self.prefix} {self._text}\n")
        sys.stderr.flush()


class _LineBar(std_tqdm):  # type: ignore[misc]
    """A tqdm bar drawing into `_Lines`; on close its last state is written (tqdm ends it without a flush)."""

    lines: _Lines | None = None

    def close(self) -> None:
        super().close()
        if self.lines is not None:
            self.lines.show()


def progress_bar(iterable: Iterable[Any] | None = None, **kwargs: Any) -> tqdm:
    """A tqdm bar (same arguments); in line mode its refreshes become prefixed lines (see `line_mode`)."""
    if _line_prefix is None or kwargs.get("disable", False):
        return tqdm(iterable, **kwargs)
    lines = _Lines(_line_prefix, _line_every)
    line_kwargs = {"file": lines, "mininterval": _line_every, "maxinterval": _line_every, "ascii": True,
                   "ncols": 100}
    bar = _LineBar(iterable, **{**kwargs, **line_kwargs})
    bar.lines = lines
    return bar
