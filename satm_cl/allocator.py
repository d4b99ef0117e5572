"""Which malloc the process runs on: the CLI re-executes itself under jemalloc when it is installed.

Why: the full-unroll hypergradient allocates and frees multi-GB autograd graphs every outer
iteration; glibc hands those back to the kernel (munmap) and faults them in again, so a large share
of CPU time is page faults. jemalloc told never to return memory (`MALLOC_CONF` below) keeps the pages
(measured in docs/performance.md). Opt out with `SATM_CL_ALLOCATOR=system`; results do not depend on
the allocator (tensor bytes are the same; the artifact records `compute.allocator`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from satm_cl.errors import SatmError

ENV_CHOICE = "SATM_CL_ALLOCATOR"  # "jemalloc" (the default when the library is found) or "system"
ENV_LIBRARY = "SATM_CL_JEMALLOC"  # an explicit path to libjemalloc.so (else the usual locations)
MALLOC_CONF = "dirty_decay_ms:-1,muzzy_decay_ms:-1,retain:true"
CHOICES = ("jemalloc", "system")
_REEXEC_MARK = "SATM_CL_ALLOCATOR_REEXEC"  # set before re-executing, so a failed preload never loops
_SEARCH = (
    "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
    "/usr/lib64/libjemalloc.so.2",
    "/usr/lib/libjemalloc.so.2",
    "/usr/local/lib/libjemalloc.so.2",
)


def find_jemalloc(env: Mapping[str, str] | None = None) -> Path | None:
    """The jemalloc shared library to preload ($SATM_CL_JEMALLOC, else a standard path), or None."""
    env = os.environ if env is None else env
    candidates = [env[ENV_LIBRARY]] if env.get(ENV_LIBRARY) else list(_SEARCH)
    return next((Path(p) for p in candidates if Path(p).is_file()), None)


def current() -> str:
    """Which allocator this process runs on: "jemalloc" (mapped; off Linux: in LD_PRELOAD) or "system"."""
    maps = Path("/proc/self/maps")
    if maps.exists():
        try:
            return "jemalloc" if "libjemalloc" in maps.read_text() else "system"
        except OSError:
            pass
    return "jemalloc" if "libjemalloc" in os.environ.get("LD_PRELOAD", "") else "system"


def _without_jemalloc(preload: str) -> str:
    return " ".join(p for p in preload.replace(":", " ").split() if "libjemalloc" not in p)


def env_for(choice: str, base: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """An environment that starts a process on `choice` ("jemalloc" or "system"); None if jemalloc
    is asked for but not installed. A user's own MALLOC_CONF is kept."""
    env = dict(os.environ if base is None else base)
    rest = _without_jemalloc(env.get("LD_PRELOAD", ""))
    if choice == "system":
        if rest:
            env["LD_PRELOAD"] = rest
        else:
            env.pop("LD_PRELOAD", None)
        if env.get("MALLOC_CONF") == MALLOC_CONF:
            env.pop("MALLOC_CONF")
        env[ENV_CHOICE] = "system"
        return env
    lib = find_jemalloc(env)
    if lib is None:
        return None
    env["LD_PRELOAD"] = f"{lib} {rest}".strip()
    env.setdefault("MALLOC_CONF", MALLOC_CONF)
    return env


def choice_from_env() -> str:
    """The allocator asked for by $SATM_CL_ALLOCATOR (default jemalloc); another value is a SatmError."""
    value = os.environ.get(ENV_CHOICE, "jemalloc").strip().lower()
    if value not in CHOICES:
        raise SatmError(f"{ENV_CHOICE}={value!r}: valid values are {', '.join(CHOICES)}")
    return value


def maybe_reexec() -> None:
    """Re-execute this command under jemalloc if asked for (the default), installed and not yet loaded.

    Returns normally (no re-exec) on opt-out, when the library is absent, off Linux, or when this
    process already is the re-executed one."""
    if not sys.platform.startswith("linux") or os.environ.get(_REEXEC_MARK):
        return
    if choice_from_env() != "jemalloc" or current() == "jemalloc":
        return
    env = env_for("jemalloc")
    if env is None:
        return
    env[_REEXEC_MARK] = "1"
    argv = list(getattr(sys, "orig_argv", [sys.executable, *sys.argv]))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *argv[1:]], env)
