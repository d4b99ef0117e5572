"""Small atomic-file helpers: a reader never sees a half-written file that looks complete."""

from __future__ import annotations

import fcntl
import glob
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from satm_cl.errors import SatmError


def _atomic(path: Path, write: Any) -> None:
    """Write `path` as `.NAME.XXXX.tmp` beside it, renamed over it once complete. The writer holds a lock on
    its temporary file until then, so after a successful write the unlocked ones of the same target (left
    by a killed write) are removed, and a concurrent writer's never is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _locked_tmp(path)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        os.close(fd)
    _remove_stale_tmps(path)


def _locked_tmp(path: Path) -> tuple[int, str]:
    """A new temporary file for `path`, locked; made again if a cleaner removed it before the lock."""
    while True:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_nlink:
            return fd, tmp
        os.close(fd)


def _remove_stale_tmps(path: Path) -> None:
    """Remove `path`'s temporary files that no writer holds; another target's (`.NAME.x.XXXX.tmp`, whose
    middle has a dot, which mkstemp's random part never does) are left alone."""
    prefix = f".{path.name}."
    for tmp in path.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        if "." in tmp.name[len(prefix) : -len(".tmp")]:
            continue
        try:
            fd = os.open(tmp, os.O_RDONLY)
        except OSError:  # renamed or removed meanwhile
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            tmp.unlink(missing_ok=True)
        except OSError:  # a live writer's
            pass
        finally:
            os.close(fd)


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on `path` + ".lock" (read-modify-write by concurrent workers)."""
    with claimed(path, wait=True):
        yield


@contextmanager
def claimed(path: Path, wait: bool) -> Iterator[bool]:
    """Try to hold the lock `locked(path)` takes: yields whether this process holds it (`wait`: block until
    it does, so always True). Lets processes sharing work skip what another is doing now."""
    lock = path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically, sorted keys, so identical content gives identical bytes."""
    _atomic(path, lambda p: p.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n"))


def write_tensors(
    path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> None:
    """Write a safetensors file atomically (contiguous CPU copies)."""
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    _atomic(path, lambda p: save_file(cpu, str(p), metadata=metadata))


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def config_hash(obj: Any) -> str:
    """A short stable hash of a JSON-able object (used to name cache directories)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]


def cache_dir(override: str | Path | None = None) -> Path:
    """Where experts and other reusable products live: --cache-dir, $SATM_CL_CACHE, or ~/.cache/satm-cl."""
    if override is not None:
        return Path(override)
    env = os.environ.get("SATM_CL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "satm-cl"


def check_out_dir(path: str | Path, flag: str = "--out") -> Path:
    """Refuse, before any work, an output directory that is an existing file or lies under one."""
    path = Path(path)
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                raise SatmError(f"{flag} {path} is not a directory: {p} is an existing file")
            break
    return path


def make_out_dir(path: str | Path, flag: str = "--out") -> Path:
    """Create an output directory (and parents); a file in the way or no permission is a SatmError."""
    path = check_out_dir(path, flag)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SatmError(f"cannot create {flag} {path}: {exc.strerror or exc}") from None
    return path


def check_out_file(path: str | Path, flag: str = "--out") -> Path:
    """Refuse an output file path that is an existing directory or lies under an existing file."""
    path = Path(path)
    if path.is_dir():
        raise SatmError(f"{flag} {path} is a directory; give a file path")
    check_out_dir(path.parent, flag)
    return path
