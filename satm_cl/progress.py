"""Progress bars for long loops: tqdm bars on a terminal, and in a grid worker (`--jobs N`, Ray) one line
per live bar every few minutes, prefixed with the job's label, so a grid that runs for hours says where each
job is without workers overwriting each other's bars."""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm

from satm_cl.errors import SatmError

LINE_EVERY_S = 300.0  # default seconds between a worker's lines for one bar
EVERY_ENV = "SATM_CL_PROGRESS_EVERY"  # overrides it (seconds)
_line_prefix: str | None = None  # set in grid workers by `line_mode`
_line_every = LINE_EVERY_S


def line_mode(prefix: str, every: float | None = None) -> None:
    """From now on in this process, bars write whole lines `prefix <bar>` to stderr at most every `every`
    seconds (default: $SATM_CL_PROGRESS_EVERY, else 300), and only once they have lived that long (short
    loops stay silent)."""
    global _line_prefix, _line_every
    if every is None:
        raw = os.environ.get(EVERY_ENV, str(LINE_EVERY_S))
        try:
            every = float(raw)
        except ValueError:
            raise SatmError(f"{EVERY_ENV} must be a number of seconds, got {raw!r}") from None
    _line_prefix, _line_every = prefix, every


_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # tqdm's cursor moves between nested bars


class _Lines:
    """A file for tqdm that turns one bar's refreshes into prefixed lines: at most one per `every` seconds
    (a postfix update refreshes at once), plus the final one of a bar that is kept on close."""

    def __init__(self, prefix: str, every: float) -> None:
        self.prefix, self.every, self._buf = prefix, every, ""
        self.born = self.last = time.monotonic()

    def write(self, s: str) -> int:
        self._buf += s
        return len(s)

    def flush(self) -> None:
        raw, self._buf = self._buf, ""
        text = _ESCAPE.sub("", raw).replace("\r", "").strip()
        now = time.monotonic()
        due = now - self.last >= self.every or "\n" in raw  # tqdm ends a kept bar with a newline
        if text and now - self.born >= self.every and due:
            self.last = now
            sys.stderr.write(f"{self.prefix} {text}\n")
            sys.stderr.flush()


def progress_bar(iterable: Iterable[Any] | None = None, **kwargs: Any) -> tqdm:
    """A tqdm bar (same arguments); in line mode its refreshes become prefixed lines (see `line_mode`)."""
    if _line_prefix is not None and not kwargs.get("disable", False):
        kwargs.update(file=_Lines(_line_prefix, _line_every), mininterval=_line_every,
                      maxinterval=_line_every, ascii=True, ncols=100)
    return tqdm(iterable, **kwargs)
