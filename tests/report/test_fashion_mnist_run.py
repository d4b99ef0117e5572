"""results/fashion-mnist/run.sh: the study's stages (grids, step 2, choice, held-out, failures) against a
stub `satm-cl` that resolves each variant file with the real config code and writes fake artifacts and
records, so a wrong variant file or a stage that stops on a diverged set fails here, not after CPU-days."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# A stub CLI: `condense` validates the variant file through satm_cl.config.resolve_config (the dataset
# registry faked out, so no torch import) and writes synthetic.json with a val that makes `ascent` at
# ρ 1.0 win SATM's step 1 and mtt-n40-lrimg1000 win MTT's grid; `evaluate` appends 5 test records.
STUB = r"""
import json, os, sys, types, zlib
from pathlib import Path
fake = types.ModuleType("satm_cl.data")
fake.DATASETS = types.SimpleNamespace(get=lambda name: None)
sys.modules["satm_cl.data"] = fake
from satm_cl.config import resolve_config
from satm_cl.errors import SatmError

cmd, args = sys.argv[1], sys.argv[2:]
opt = {args[i]: args[i + 1] for i in range(len(args) - 1) if args[i].startswith("--")}
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\n")
if cmd == "condense":
    out = Path(opt["--out"])
    name = out.name
    if name in os.environ.get("STUB_BROKEN", "").split():
        print("error: expert store x holds 1 of the 6 experts", file=sys.stderr); sys.exit(2)
    if name in os.environ.get("STUB_DIVERGE", "").split():
        print("condense satm:  4%|| 12/300\rerror: non-finite loss or gradient at iteration 12; stopped",
              file=sys.stderr)
        sys.exit(2)
    try:
        cfg = resolve_config("fashion-mnist", int(opt["--ipc"]), opt["--method"],
                             config_file=Path(opt["--config"])).to_dict()
    except SatmError as exc:
        print(f"error: {exc}", file=sys.stderr); sys.exit(2)
    variant, seed = name.split("-", 1)[1].rsplit("-s", 1)
    base = variant
    for suffix in ("-smooth", "-rho0.05", "-tr", "-asam"):
        base = base.removesuffix(suffix)
    val = 60 + zlib.crc32(base.encode()) % 5 + int(seed) / 10
    val += 10 * ("ascent" in variant and "rho1.0" in variant) + 10 * (variant == "mtt-n40-lrimg1000")
    val += 1 * variant.endswith("-smooth") + 0.05 * variant.endswith("-rho0.05")
    out.mkdir(parents=True, exist_ok=True)
    meta = {"config": cfg, "selection": {"val_accuracy": val}, "wall_time_s": 30.0 + cfg["syn_steps"],
            "iterations": 300}
    (out / "synthetic.json").write_text(json.dumps(meta))
elif cmd == "evaluate":
    art = Path(opt["--synthetic"])
    if not (art / "synthetic.json").is_file():
        print(f"error: no synthetic set at {art}", file=sys.stderr); sys.exit(2)
    meta = json.loads((art / "synthetic.json").read_text())
    out = Path(opt["--out"]); out.mkdir(parents=True, exist_ok=True)
    base = meta["selection"]["val_accuracy"] - 1 + int(opt["--seed"]) / 100
    with open(out / "records.jsonl", "a") as f:
        for run in range(int(opt["--runs"])):
            f.write(json.dumps({"stage": "in-domain", "metric": "test_accuracy", "value": base + run / 10,
                                "config": {"artifact": str(art)}}) + "\n")
elif cmd != "report":  # `report` is only logged
    sys.exit(f"stub: unexpected command {cmd}")
"""


@pytest.fixture()
def study(tmp_path: Path) -> Path:
    """A tree with run.sh and summary.py where they live, and the stub first on PATH."""
    here = tmp_path / "results" / "fashion-mnist"
    here.mkdir(parents=True)
    for name in ("run.sh", "summary.py"):
        shutil.copy(ROOT / "results" / "fashion-mnist" / name, here / name)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "satm-cl"
    stub.write_text(f"#!{sys.executable}\n{STUB}")
    stub.chmod(0o755)
    python = bin_dir / "python"  # run.sh's `python`: this interpreter (a symlink would lose its venv)
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    return tmp_path


def _run(study: Path, stage: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {
        **os.environ,
        "PATH": f"{study / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "STUB_LOG": str(study / "stub.log"),
        "JOBS": "2",
        "DATA_DIR": str(study / "data"),
        **env,
    }
    return subprocess.run(
        ["bash", str(study / "results" / "fashion-mnist" / "run.sh"), stage],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_ipc1_stage_end_to_end(study: Path) -> None:
    r = study / "results" / "fashion-mnist"
    diverge = "ipc1-mtt-n40-lrimg1000-n80-s4"  # MTT diverging at the long horizon: a result, not a crash
    diverge_select = "ipc1-satm-rho0.1-exact-s2"  # and a selection set: its variant is no longer eligible
    done = _run(study, "ipc1", STUB_DIVERGE=f"{diverge} {diverge_select}")
    assert done.returncode == 0, done.stderr[-2000:]
    # every declared variant file resolves through the real config (an invalid one makes the stub fail)
    winner = "satm-rho1.0-ascent"
    # an ascent-only winner truncates the ascent only: TR needs a truncated descent, so its slot is ρ 0.05
    assert (r / "variants" / f"{winner}-rho0.05.json").is_file()
    assert not (r / "variants" / f"{winner}-tr.json").exists()
    cfg = json.loads((r / "artifacts" / f"ipc1-{winner}-rho0.05-s0" / "synthetic.json").read_text())["config"]
    assert cfg["rho"] == 0.05 and cfg["truncate"] == 10 and cfg["truncate_descent"] is False
    # -smooth raises the winner's val by 1 (chosen); -rho0.05 raises it by 0.05 and is not cheaper
    assert (r / "chosen-ipc1.satm").read_text().strip() == f"{winner}-smooth"
    assert (r / "chosen-ipc1.mtt").read_text().strip() == "mtt-n40-lrimg1000"
    failed = r / "artifacts" / f"{diverge}" / "FAILED"
    assert "non-finite loss" in failed.read_text() and "condense" not in failed.read_text()
    # the primary ran and was evaluated on all five held-out seeds; n80 on the four that condensed
    summary = (r / "summary.md").read_text()
    assert "seeds 3, 4, 5, 6, 7" in summary.split("primary, syn_steps as chosen")[1].splitlines()[0]
    n80 = summary.split("secondary, syn_steps 80")[1].splitlines()[0]
    assert "seeds 3, 5, 6, 7" in n80
    assert "mtt-n40-lrimg1000-n80 failed to condense (non-finite loss) on seed(s) 4" in summary
    assert "| satm-rho0.1-exact | 3/3 (1 failed: not eligible) |" in summary
    # the matched secondary: SATM's chosen settings at MTT's syn_steps 40 and lr_img 1000, K = 20
    matched = f"matched-{winner}-smooth-at-mtt-n40-lrimg1000"
    mcfg = json.loads((r / "artifacts" / f"ipc1-{matched}-s3" / "synthetic.json").read_text())["config"]
    assert (mcfg["syn_steps"], mcfg["lr_img"], mcfg["truncate"], mcfg["smooth_samples"]) == (40, 1000, 20, 2)
    assert matched in summary
    # a rerun does no condensation or evaluation again, and does not retry the diverged set
    before = (study / "stub.log").read_text().count("\n")
    again = _run(study, "ipc1", STUB_DIVERGE=f"{diverge} {diverge_select}")
    assert again.returncode == 0 and "failed before, not retried" in again.stdout
    log = (study / "stub.log").read_text().splitlines()[before:]
    assert not [line for line in log if line.startswith("condense")]


def test_other_errors_stop_the_stage(study: Path) -> None:
    r = study / "results" / "fashion-mnist"
    done = _run(study, "select", STUB_BROKEN="ipc1-mtt-n10-lrimg30-s1")
    assert done.returncode != 0 and "failed (exit 2): condense 1 mtt mtt-n10-lrimg30 1" in done.stderr
    assert (
        not (r / "chosen-ipc1.satm").exists() and not (r / "artifacts" / "ipc1-mtt-n10-lrimg30-s1").exists()
    )


def test_report_reads_the_full_rows_once_they_exist(study: Path) -> None:
    # the `full` rows live in results/fashion-mnist-full-rows (one tuned training per architecture), not
    # under evals/: the report takes them when the benchmark stage has made them, and runs without them
    r = study / "results" / "fashion-mnist"
    (r / "evals" / "ipc1-x-s3").mkdir(parents=True)
    (r / "evals" / "ipc1-x-s3" / "records.jsonl").write_text("")

    def report_args() -> str:
        done = _run(study, "report")
        assert done.returncode == 0, done.stderr[-2000:]
        log = (study / "stub.log").read_text().splitlines()
        return [line for line in log if line.startswith("report")][-1]

    without = report_args()
    assert "evals/ipc1-x-s3/records.jsonl" in without and "full-rows" not in without
    full = study / "results" / "fashion-mnist-full-rows" / "records.jsonl"
    full.parent.mkdir(parents=True)
    full.write_text("")
    assert "results/fashion-mnist-full-rows/records.jsonl" in report_args()
