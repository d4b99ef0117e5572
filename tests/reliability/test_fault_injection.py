"""Fault injection: SIGKILL `satm-cl` at seeded random moments, rerun, and compare with an uninterrupted run.

For `experts`, `condense --resume`, `evaluate` and `evaluate --suite continual` on digits with tiny settings:
the same command is started and killed with SIGKILL at seeded random times (drawn over the uninterrupted
run's duration), then rerun until it finishes. After every kill nothing half-written may look complete
(every expert the manifest lists verifies, a present synthetic.json loads, the records file parses), and
the final outputs must equal the uninterrupted run's: expert files and manifest byte for byte, the
artifact's tensors byte for byte (its JSON up to wall time), the condensation log up to timings, and the
set of records. Both runs use OMP_NUM_THREADS=1 (bitwise equality holds for one thread count).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from satm_cl.experts.store import TrajectoryStore
from satm_cl.records import read_records
from satm_cl.synthetic import META_FILE, TENSOR_FILE, load_synthetic

pytestmark = pytest.mark.slow
KILLS = 3
TINY = {
    "iterations": 10,
    "syn_steps": 4,
    "truncate": 2,
    "max_start_epoch": 2,
    "expert_epochs": 2,
    "eval_every": 5,
    "eval_epochs": 20,
    "checkpoint_every": 2,
    "expert": {"num_experts": 2, "epochs": 4, "arch_kwargs": {"width": 16, "depth": 2, "norm": "instance"}},
}
TIMES: dict[str, str] = {}


def _cli(args: list[str], cwd: Path, cache: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SATM_CL_CACHE": str(cache)}
    return subprocess.Popen(
        [sys.executable, "-m", "satm_cl.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def uninterrupted(args: list[str], cwd: Path, cache: Path) -> float:
    """Run to completion; return its wall time."""
    t0 = time.perf_counter()
    proc = _cli(args, cwd, cache)
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err.decode()
    return time.perf_counter() - t0


def interrupted(
    args: list[str], cwd: Path, cache: Path, span: float, seed: int, check: Any
) -> tuple[int, float]:
    """Kill at KILLS seeded random times within `span`, `check()` the disk after each, then finish.
    Returns (kills that landed, total wall time)."""
    rng = random.Random(seed)
    landed = 0
    t0 = time.perf_counter()
    for _ in range(KILLS):
        proc = _cli(args, cwd, cache)
        try:
            proc.wait(timeout=rng.uniform(0.25, 1.0) * span)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
            landed += 1
        else:
            assert proc.returncode == 0, proc.stderr.read().decode() if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
        check()
    proc = _cli(args, cwd, cache)
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err.decode()
    check()
    return landed, time.perf_counter() - t0


def _files(root: Path) -> dict[str, bytes]:
    """Every file under root except atomic-write leftovers (`.name.XXXX.tmp`, never read by anything)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not (p.name.startswith(".") and p.name.endswith(".tmp"))
    }


def _stores_consistent(cache: Path) -> None:
    for manifest in (cache / "experts").glob("*/manifest.json"):
        store = TrajectoryStore.open(manifest.parent)
        listed = sorted(int(k) for k in store.manifest["experts"])
        assert store.done() == listed, f"{manifest}: a listed expert does not verify"


def _artifact_consistent(art: Path) -> None:
    if (art / META_FILE).exists():
        load_synthetic(art)  # present metadata means a whole, verified artifact


def _records_consistent(path: Path) -> None:
    if path.exists():
        read_records(path)


def _record_set(path: Path) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True) for r in read_records(path))


@pytest.fixture(scope="module", autouse=True)
def _report_times() -> Any:
    yield
    for line in TIMES.values():
        print(line)


def test_experts_survive_sigkill(tmp_path: Path) -> None:
    args = ["experts", "--num-experts", "3", "--epochs", "4", "--device", "cpu"]
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    ref.mkdir(), cut.mkdir()
    span = uninterrupted(args, ref, ref / "cache")
    landed, total = interrupted(args, cut, cut / "cache", span, 1, lambda: _stores_consistent(cut / "cache"))
    assert landed >= 1
    assert _files(cut / "cache") == _files(ref / "cache")
    TIMES["experts"] = (
        f"fault injection experts: uninterrupted {span:.1f}s, {landed} kills + rerun {total:.1f}s"
    )


@pytest.fixture(scope="module")
def condensed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The tiny condensation, uninterrupted (its artifact also feeds the evaluate and continual tests)."""
    root = tmp_path_factory.mktemp("condense")
    (root / "tiny.json").write_text(json.dumps(TINY))
    args = ["condense", "--config", str(root / "tiny.json"), "--resume", "--device", "cpu", "--out"]
    ref = root / "ref"
    ref.mkdir()
    span = uninterrupted([*args, str(ref / "art")], ref, ref / "cache")
    return {"root": root, "args": args, "ref": ref, "span": span}


def _log_rows(art: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (art / "log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("seconds", "peak_mem_mb")} for r in rows]


def _meta(art: Path) -> dict[str, Any]:
    meta = json.loads((art / META_FILE).read_text())
    meta.pop("wall_time_s")
    return meta


def test_condense_survives_sigkill(condensed: dict[str, Any]) -> None:
    cut = condensed["root"] / "cut"
    cut.mkdir()
    art, ref_art = cut / "art", condensed["ref"] / "art"

    def check() -> None:
        _stores_consistent(cut / "cache")
        _artifact_consistent(art)

    span = condensed["span"]
    landed, total = interrupted([*condensed["args"], str(art)], cut, cut / "cache", span, 2, check)
    assert landed >= 1
    assert (art / TENSOR_FILE).read_bytes() == (ref_art / TENSOR_FILE).read_bytes()
    assert _meta(art) == _meta(ref_art)
    assert _log_rows(art) == _log_rows(ref_art)
    assert _files(cut / "cache") == _files(condensed["ref"] / "cache")
    TIMES["condense"] = (
        f"fault injection condense: uninterrupted {span:.1f}s, {landed} kills + rerun {total:.1f}s"
    )


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("evaluate", ["--runs", "4", "--epochs", "40"]),
        (
            "continual",
            [
                "--suite",
                "continual",
                "--memories",
                "satm,random,reservoir",
                "--orders",
                "2",
                "--steps",
                "2",
                "--ipc",
                "1",
                "--epochs",
                "20",
            ],
        ),
    ],
)
def test_evaluation_survives_sigkill(name: str, extra: list[str], condensed: dict[str, Any]) -> None:
    root = condensed["root"] / name
    art = condensed["ref"] / "art"
    args = ["evaluate", "--synthetic", str(art), *extra, "--device", "cpu", "--out"]
    (root / "ref").mkdir(parents=True)
    (root / "cut").mkdir()
    span = uninterrupted([*args, str(root / "ref" / "out")], root / "ref", root / "ref" / "cache")
    records = root / "cut" / "out" / "records.jsonl"
    landed, total = interrupted(
        [*args, str(root / "cut" / "out")], root / "cut", root / "cut" / "cache", span, 3,
        lambda: _records_consistent(records),
    )  # fmt: skip
    assert landed >= 1
    assert _record_set(records) == _record_set(root / "ref" / "out" / "records.jsonl")
    assert {p.name for p in (root / "cut" / "out").iterdir()} == {
        p.name for p in (root / "ref" / "out").iterdir()
    }
    TIMES[name] = f"fault injection {name}: uninterrupted {span:.1f}s, {landed} kills + rerun {total:.1f}s"
