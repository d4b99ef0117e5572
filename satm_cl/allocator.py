"""Which malloc the process runs on: the CLI re-executes itself under jemalloc when it is installed.

Why: the full-unroll hypergradient allocates and frees multi-GB autograd graphs every outer
iteration; glibc hands those back to the kernel (munmap) and faults them in again, so a large share
of CPU time is page faults. jemalloc told never to return memory (`MALLOC_CONF` below) keeps the pages
(measured in docs/performance.md). Opt out with `SATM_CL_ALLOCATOR=system`; results do not depend on
the allocator (tensor bytes are the same; the artifact records `compute.allocator`).
Kept pages are only reused, never returned, so a long-lived process grows where freed blocks do not fit
new requests: `release_free_memory` hands them back; `ReleaseOnGrowth` does it when a loop's resident set
has grown by a set amount, so a loop that does not grow never pays for re-faulting.
"""

from __future__ import annotations

import ctypes
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


def release_free_memory() -> bool:
    """Return the allocator's free pages to the kernel: jemalloc purges every arena, glibc trims its heap.

    Why: under the never-purge setting above, a grid worker that condensed several sets grew by about
    1.5 GB per 300-iteration condensation (live tensors constant) until a 24 GB machine ran out of memory.
    Costs one re-fault of the next iteration's pages (about one outer iteration's time in the condensation
    unroll), so loops call it through `ReleaseOnGrowth`, and grid workers once per job.
    Returns False where neither allocator's call exists (e.g. off Linux)."""
    try:
        lib = ctypes.CDLL(None)
    except OSError:
        return False
    if current() == "jemalloc" and hasattr(lib, "mallctl"):
        return lib.mallctl(b"arena.4096.purge", None, None, None, ctypes.c_size_t(0)) == 0  # 4096: all
    if hasattr(lib, "malloc_trim"):
        lib.malloc_trim(ctypes.c_size_t(0))
        return True
    return False


def resident_mb() -> float | None:
    """This process's resident set in MB (None where /proc is missing)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class ReleaseOnGrowth:
    """Call `check()` once per loop turn: it releases the allocator's free pages when the resident set has
    grown by more than `limit_mb` over its base (a /proc read per turn). The base is taken at the first
    check and at the first check after each release, i.e. once a turn has faulted its working set in again,
    so only growth beyond the loop's own working set counts."""

    def __init__(self, limit_mb: float = 1024.0) -> None:
        self.limit_mb = limit_mb
        self.base: float | None = None
        self.releases = 0

    def check(self) -> bool:
        """Release if grown past the limit; True when it released."""
        now = resident_mb()
        if now is None:
            return False
        if self.base is None:
            self.base = now
            return False
        if now - self.base <= self.limit_mb:
            return False
        release_free_memory()
        self.base = None
        self.releases += 1
        return True
