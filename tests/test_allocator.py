"""The CLI re-executes itself under jemalloc when installed; opt-out and absent library run as is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from satm_cl import allocator

PROBE = (
    "import os, sys; sys.argv = ['satm-cl', '--help'];"
    "from satm_cl.allocator import maybe_reexec, current; maybe_reexec();"
    "print(os.environ.get('LD_PRELOAD', ''), '|', current(), '|', os.environ.get('MALLOC_CONF', ''))"
)


def _probe(env: dict[str, str]) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return [part.strip() for part in out.stdout.strip().split("|")]


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SATM_CL_ALLOC")}
    env.pop("LD_PRELOAD", None)
    env.pop("MALLOC_CONF", None)
    env.update(extra)
    return env


@pytest.mark.skipif(allocator.find_jemalloc() is None, reason="libjemalloc2 not installed")
def test_reexec_preloads_jemalloc_when_installed() -> None:
    preload, current, conf = _probe(_clean_env())
    assert "libjemalloc" in preload and current == "jemalloc"
    assert conf == allocator.MALLOC_CONF


def test_opt_out_runs_on_system_malloc() -> None:
    preload, current, _ = _probe(_clean_env(SATM_CL_ALLOCATOR="system"))
    assert preload == "" and current == "system"


def test_absent_library_falls_back_cleanly(tmp_path: Path) -> None:
    preload, current, _ = _probe(_clean_env(SATM_CL_JEMALLOC=str(tmp_path / "missing.so")))
    assert preload == "" and current == "system"


def test_env_for_system_strips_only_jemalloc() -> None:
    env = allocator.env_for(
        "system", {"LD_PRELOAD": "/x/libjemalloc.so.2 /y/other.so", "MALLOC_CONF": allocator.MALLOC_CONF}
    )
    assert env is not None and env["LD_PRELOAD"] == "/y/other.so" and "MALLOC_CONF" not in env


def test_unknown_choice_is_a_one_line_error() -> None:
    env = _clean_env(SATM_CL_ALLOCATOR="tcmalloc")
    out = subprocess.run(
        [sys.executable, "-m", "satm_cl.cli", "presets"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2 and out.stderr.strip().startswith("error: SATM_CL_ALLOCATOR")
    assert len(out.stderr.strip().splitlines()) == 1


RELEASE_PROBE = """
import torch
from satm_cl.allocator import current, release_free_memory
def rss():
    return int([l for l in open('/proc/self/status') if l.startswith('VmRSS')][0].split()[1]) // 1024
x = torch.ones(64 * 2**20)  # 256 MB
held = rss()
del x
kept = rss()
ok = release_free_memory()
print(current(), ok, held - kept, held - rss())
"""


@pytest.mark.skipif(allocator.find_jemalloc() is None, reason="libjemalloc2 not installed")
def test_release_hands_jemallocs_kept_pages_back() -> None:
    """Under our never-purge setting a freed block stays resident until `release_free_memory`."""
    env = _clean_env(LD_PRELOAD=str(allocator.find_jemalloc()), MALLOC_CONF=allocator.MALLOC_CONF,
                     OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", RELEASE_PROBE], env=env, capture_output=True, text=True,
                         timeout=120, check=True)
    name, ok, dropped_on_free, dropped_on_release = out.stdout.split()
    assert name == "jemalloc" and ok == "True"
    assert int(dropped_on_free) < 50 and int(dropped_on_release) > 200


def test_release_runs_on_the_system_allocator() -> None:
    env = _clean_env(OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", RELEASE_PROBE], env=env, capture_output=True, text=True,
                         timeout=120, check=True)
    name, ok, _, _ = out.stdout.split()
    assert name == "system" and ok == "True"


GUARD_PROBE = """
import torch
from satm_cl.allocator import ReleaseOnGrowth, resident_mb
guard = ReleaseOnGrowth(limit_mb=150)
small = guard.check()  # takes the base
x = torch.ones(64 * 2**20)  # 256 MB
del x
held = resident_mb()
released = guard.check()
dropped = held - resident_mb()
rebased = guard.check()  # the base is taken again after a release
again = guard.check()
print(small, released, rebased, again, guard.releases, round(dropped))
"""


@pytest.mark.skipif(allocator.find_jemalloc() is None, reason="libjemalloc2 not installed")
def test_release_on_growth_releases_once_past_its_limit() -> None:
    env = _clean_env(LD_PRELOAD=str(allocator.find_jemalloc()), MALLOC_CONF=allocator.MALLOC_CONF,
                     OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", GUARD_PROBE], env=env, capture_output=True, text=True,
                         timeout=120, check=True)
    small, released, rebased, again, releases, dropped = out.stdout.split()
    assert (small, released, rebased, again, releases) == ("False", "True", "False", "False", "1")
    assert int(dropped) > 200
