"""The bad-input suite's tally (tried, tracebacks, outputs modified), printed at the end of the run."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest


@dataclass
class Tally:
    """Counts over every CLI invocation the bad-input suite makes."""

    tried: int = 0
    tracebacks: int = 0
    modified: int = 0
    cases: set[str] = field(default_factory=set)

    def line(self) -> str:
        return (
            f"bad-input suite: tried {self.tried} ({len(self.cases)} distinct cases), "
            f"tracebacks {self.tracebacks}, outputs modified {self.modified}"
        )


TALLY_KEY = pytest.StashKey[Tally]()


@pytest.fixture(scope="session")
def tally(request: pytest.FixtureRequest) -> Tally:
    """The session's tally; every bad-input invocation adds to it."""
    return request.config.stash.setdefault(TALLY_KEY, Tally())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    tally = config.stash.get(TALLY_KEY, None)
    if tally is not None and tally.tried:
        terminalreporter.write_line(tally.line())
