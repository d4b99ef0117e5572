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
