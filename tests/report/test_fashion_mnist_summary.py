"""results/fashion-mnist/summary.py: the pre-registered study's tables from a fake study tree on disk."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from satm_cl.report.paired import paired_stats

SCRIPT = Path(__file__).resolve().parents[2] / "results" / "fashion-mnist" / "summary.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fm_summary", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _artifact(root: Path, name: str, val: float, seconds: float, n: int = 20, lr_img: float = 100.0) -> None:
    d = root / "artifacts" / name
    d.mkdir(parents=True)
    meta = {
        "selection": {"val_accuracy": val},
        "wall_time_s": seconds,
        "iterations": 100,
        "config": {"syn_steps": n, "lr_img": lr_img},
    }
    (d / "synthetic.json").write_text(json.dumps(meta))


def _evals(root: Path, out: str, runs: dict[str, list[float]]) -> None:
    """Records as `satm-cl evaluate` writes them: one test_accuracy row per run, the artifact in config."""
    d = root / "evals" / out
    d.mkdir(parents=True)
    rows: list[dict[str, Any]] = [
        {"stage": "in-domain", "metric": "test_accuracy", "value": v, "config": {"artifact": f"x/{art}"}}
        for art, values in runs.items()
        for v in values
    ]
    rows.append({"stage": "in-domain", "metric": "skipped", "value": None, "config": {"artifact": "x/y"}})
    (d / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture()
def study(tmp_path: Path) -> Path:
    (tmp_path / "variants").mkdir()
    for v in ("satm-a", "satm-a-tr", "mtt-b", "satm-a-n80"):
        (tmp_path / "variants" / f"{v}.json").write_text("{}")
    for s in (0, 1, 2):
        _artifact(tmp_path, f"ipc1-satm-a-s{s}", 70.0 + s, 50.0)
        _artifact(tmp_path, f"ipc1-mtt-b-s{s}", 60.0, 20.0, n=40, lr_img=1000.0)
    _artifact(tmp_path, "ipc1-satm-a-tr-s0", 99.0, 10.0)  # one seed only: shown, counted, not complete
    (tmp_path / "chosen-ipc1.satm").write_text("satm-a\n")
    (tmp_path / "chosen-ipc1.mtt").write_text("mtt-b\n")
    _evals(tmp_path, "select-ipc1-satm-a", {"ipc1-satm-a-s0": [50.0, 52.0]})
    satm = {3: 71.0, 4: 73.0, 5: 70.0, 6: 74.0, 7: 72.0}
    mtt = {3: 70.0, 4: 70.0, 5: 71.0, 6: 70.0, 7: 69.0}
    _evals(
        tmp_path,
        "ipc1-satm-a",
        {f"ipc1-satm-a-s{s}": [v - 2, v - 1, v, v + 1, v + 2] for s, v in satm.items()},
    )
    _evals(tmp_path, "ipc1-mtt-b", {f"ipc1-mtt-b-s{s}": [v] * 5 for s, v in mtt.items()})
    matched = {3: 69.0, 4: 72.0, 5: 70.0}  # three held-out seeds evaluated so far
    _evals(
        tmp_path,
        "ipc1-matched-satm-a-at-mtt-b",
        {f"ipc1-matched-satm-a-at-mtt-b-s{s}": [v] for s, v in matched.items()},
    )
    return tmp_path


def test_selection_table_and_primary(study: Path) -> None:
    mod = _load()
    text = mod.summarize(study)
    # (1 step-1 variant + 3 step-2 slots + 1 MTT variant) x 3 seeds; the -n80 rerun is no candidate
    assert "7 of 15 condensations finished" in text
    assert "| **satm-a** (chosen) | 3/3 | 71.0 ± 1.0 | 70.0 / 71.0 / 72.0 | 0.50 | 51.0 |" in text
    assert "| satm-a-tr | 1/3 | 99.0 |" in text and "| **mtt-b** (chosen) | 3/3 | 60.0 ± 0.0 |" in text
    expect = paired_stats([71.0, 73.0, 70.0, 74.0, 72.0], [70.0, 70.0, 71.0, 70.0, 69.0])
    got = mod.comparison(study, 1, "satm-a", "mtt-b")
    assert got["seeds"] == [3, 4, 5, 6, 7] and got["diff_mean"] == pytest.approx(expect["diff_mean"])
    assert f"difference {expect['diff_mean']:+.2f} points" in text
    assert "SATM ahead on 4/5" in text
    # p 0.09 and a 2.0-point difference under the 3.3-point MDE: said to be unresolved, not "no difference"
    assert "not resolved: not significant, and smaller than the MDE" in text
    assert "secondary, syn_steps 80: fewer than 2 held-out seeds" in text  # not run: said, not guessed
    assert "## IPC 10" in text and "No choice yet" in text


def test_matched_secondary(study: Path) -> None:
    mod = _load()
    expect = paired_stats([69.0, 72.0, 70.0], [70.0, 70.0, 71.0])  # matched SATM vs chosen MTT, seeds 3-5
    text = mod.summarize(study)
    line = next(x for x in text.splitlines() if "SATM at MTT's syn_steps and lr_img" in x)
    assert "matched-satm-a-at-mtt-b" in line and "seeds 3, 4, 5" in line
    assert f"difference {expect['diff_mean']:+.2f} points" in text
    assert "matched-satm-a-at-mtt-b" not in mod.selection_variants(study)  # never a selection candidate
    # when MTT chose SATM's own horizon and image LR there is nothing to match
    for s in (0, 1, 2):
        meta = study / "artifacts" / f"ipc1-mtt-b-s{s}" / "synthetic.json"
        meta.write_text(
            json.dumps({**json.loads(meta.read_text()), "config": {"syn_steps": 20, "lr_img": 100.0}})
        )
    assert "MTT chose SATM's own syn_steps and lr_img, so this is the primary" in mod.summarize(study)


def _c(p: float, n: int = 5, short: tuple[int, ...] = ()) -> dict[str, Any]:
    return {"t_test_p": p, "n": n, "short": list(short)}


def test_holm_steps() -> None:
    holm = _load().holm
    # IPC 10 missing: IPC 1 is judged at alpha/2; a p between 0.025 and 0.05 waits for IPC 10
    assert "significant at its Holm step, α = 0.025" in holm({1: _c(0.01), 10: None})[0]
    assert "pending" in holm({1: _c(0.03), 10: None})[0]
    assert "not significant" in holm({1: _c(0.2), 10: None})[0]
    # both in: the smaller p at 0.025, the larger at 0.05 only if the first step passed
    both = holm({1: _c(0.04), 10: _c(0.02)})
    assert both == [
        "- IPC 10: significant at its Holm step, α = 0.025",
        "- IPC 1: significant at its Holm step, α = 0.050",
    ]
    failed = holm({1: _c(0.04), 10: _c(0.03)})
    assert "not significant at its Holm step" in failed[0] and "earlier Holm step failed" in failed[1]
    # fewer than five seeds, or a seed short of its runs: interim, no verdict, and the other IPC judged alone
    interim = holm({1: _c(0.001, n=3), 10: _c(0.01)})
    assert interim[0].startswith("- IPC 1: interim (3 of 5") and "no verdict" in interim[0]
    assert interim[1] == "- IPC 10: significant at its Holm step, α = 0.025"
    assert "fewer than 5 runs" in holm({1: _c(0.001, short=(4,)), 10: None})[0]
