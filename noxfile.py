"""Nox sessions sharing ONE virtualenv (.nox/shared), so torch (~6 GB) installs once.

demo: install and run the main job end to end on the embedded dataset (digits).
tests: the fast suite (-m "not slow"). lint: ruff. typecheck: mypy on the core. bench: `satm-cl bench`
(expert training, evaluation runs, condensation, each beside its ceiling).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import nox

nox.options.sessions = ["tests"]
ROOT = Path(__file__).parent
VENV = ROOT / ".nox" / "shared"
BIN = VENV / "bin"
# On this project's CPU machines these wheels lie on disk; elsewhere pip fetches them.
TORCH = ["torch==2.14.1", "torchvision==0.29.1"]


def _install(session: nox.Session) -> None:
    """Create the shared venv once; reinstall the project only when pyproject.toml changed."""
    if not (BIN / "python").exists():
        session.run(sys.executable, "-m", "venv", str(VENV), external=True)
    stamp = VENV / ".satm-cl-installed"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    pip = [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    session.run(*pip, *TORCH, external=True)
    session.run(*pip, "-e", f"{ROOT}[dev,mnist,ray]", external=True)
    stamp.write_text(digest)


def _run(session: nox.Session, *args: str) -> None:
    session.run(str(BIN / args[0]), *args[1:], external=True, env={"OMP_NUM_THREADS": "2"})


@nox.session(python=False)
def demo(session: nox.Session) -> None:
    """Experts → SATM condensation → evaluation vs a random real subset → report, on digits."""
    _install(session)
    out = "runs/demo"
    steps = [
        "datasets",
        "experts --dataset digits",
        f"condense --dataset digits --ipc 1 --out {out}/satm --resume",
        f"show {out}/satm",
        f"evaluate --synthetic {out}/satm --suite in-domain --runs 3 --out {out}/eval",
        f"evaluate --baseline random --dataset digits --ipc 1 --suite in-domain --runs 3 --out {out}/eval",
        f"report {out}/eval/records.jsonl --out {out}/report --artifact {out}/satm",
    ]
    for step in steps:
        _run(session, "satm-cl", *step.split())
    session.log(f"demo done: see {out}/report/README.md")


@nox.session(python=False)
def tests(session: nox.Session) -> None:
    """The fast test suite (CPU, under 10 minutes); pass `-- -m slow` to run the slow ones."""
    _install(session)
    args = session.posargs or ["-m", "not slow"]
    _run(session, "pytest", "-q", "-p", "no:cacheprovider", *args)


@nox.session(python=False)
def lint(session: nox.Session) -> None:
    """ruff over the package, tests and benchmarks."""
    _install(session)
    _run(session, "ruff", "check", "satm_cl", "tests", "noxfile.py")


@nox.session(python=False)
def typecheck(session: nox.Session) -> None:
    """mypy on the whole package."""
    _install(session)
    _run(session, "mypy", "satm_cl")


@nox.session(python=False)
def bench(session: nox.Session) -> None:
    """Every bench suite beside its ceilings (`-- --suite condense --steps 10,20` etc. to narrow it);
    writes results/perf/. Each measurement runs in a fresh process with a timeout, so it cannot hang."""
    _install(session)
    _run(session, "satm-cl", "bench", "--out", "results/perf", *session.posargs)
