"""Corruption robustness metrics (hand-computed), the report section, and LR-protocol rows in tables."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from _report_fixtures import cross_arch_records, ood_records, rec, write_jsonl

from satm_cl.data.corruptions import corrupted_name
from satm_cl.report import build_report
from satm_cl.report.corruptions import corruption_long, corruption_summary
from satm_cl.report.paired import paired_table
from satm_cl.report.tables import accuracy_table, is_corrupted, parse_corrupted, summarise


def _corrupted_records() -> list[dict[str, Any]]:
    """satm on fashion-mnist IPC 10, two seeds: clean 80 / 90; contrast 60/70, 50/60, 40/50 (severities 1-3);
    gaussian_noise 70/80 at every severity. mtt: clean only (no corrupted rows)."""
    out = []
    for s, clean in enumerate((80.0, 90.0)):
        out.append(rec("ood", "satm", clean, dataset="fashion-mnist", seed=s))
        for sev, base in ((1, 60.0), (2, 50.0), (3, 40.0)):
            name = corrupted_name("fashion-mnist", "contrast", sev)
            out.append(rec("ood", "satm", base + 10 * s, dataset="fashion-mnist", seed=s, test_dataset=name))
            name = corrupted_name("fashion-mnist", "gaussian_noise", sev)
            out.append(rec("ood", "satm", 70.0 + 10 * s, dataset="fashion-mnist", seed=s, test_dataset=name))
        out.append(rec("ood", "mtt", clean, dataset="fashion-mnist", seed=s))
    return out


def test_parse_corrupted_round_trips_the_data_label() -> None:
    assert parse_corrupted(corrupted_name("fashion-mnist", "shot_noise", 3)) == (
        "fashion-mnist",
        "shot_noise",
        3,
    )
    assert parse_corrupted("mnist5k") is None and parse_corrupted(None) is None
    assert is_corrupted("digits-C/rotation/1") and not is_corrupted("cifar10-c")


def test_metrics_are_the_hand_computed_values() -> None:
    long = corruption_long(_corrupted_records())
    contrast = long[long["corruption"] == "contrast"].set_index("severity")["mean"]
    assert list(contrast) == [65.0, 55.0, 45.0]
    clean = long[long["corruption"] == "clean"]
    assert list(clean["mean"]) == [85.0] and list(clean["severity"]) == [0]
    assert math.isclose(float(clean["std"].iloc[0]), math.sqrt(50.0))
    summary = corruption_summary(long)
    assert len(summary) == 1  # mtt has no corrupted rows, so no robustness row
    row = summary.iloc[0]
    assert row["method"] == "satm" and row["lr_protocol"] == "learned"
    assert row["clean"] == 85.0 and row["contrast"] == 55.0 and row["gaussian_noise"] == 75.0
    assert row["mCA"] == 65.0
    assert math.isclose(row["relative_robustness"], 65.0 / 85.0)


def test_report_writes_the_corruption_section_and_keeps_the_ood_table_narrow(tmp_path: Path) -> None:
    records = write_jsonl(tmp_path / "records.jsonl", _corrupted_records() + ood_records())
    written = build_report([records], tmp_path / "report")
    names = {p.name for p in written}
    assert {"corruptions.md", "corruptions.csv", "corruptions_long.csv", "corruptions.png"} <= names
    readme = (tmp_path / "report" / "README.md").read_text()
    assert "## ood: corruptions" in readme and "0.765" in readme  # 65 / 85 to three decimals
    ood_md = (tmp_path / "report" / "ood.md").read_text()
    assert "cifar10-c" in ood_md and "-C/" not in ood_md


def _both(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each record as an old (no lr_protocol) learned row plus a tuned copy 10 points higher."""
    return records + [{**r, "lr_protocol": "tuned", "value": r["value"] + 10} for r in records]


def test_tables_split_rows_by_protocol_only_when_tuned_rows_exist() -> None:
    plain = accuracy_table(summarise(cross_arch_records()), "cross-arch")
    assert "lr_protocol" not in plain.columns
    table = accuracy_table(summarise(_both(cross_arch_records())), "cross-arch")
    assert list(table["lr_protocol"]) == ["learned", "tuned"] * 2
    satm = table[table["method"] == "satm"].set_index("lr_protocol")
    assert satm.loc["learned", "convnet"] == "60.5 ± 0.7" and satm.loc["tuned", "convnet"] == "70.5 ± 0.7"


@pytest.mark.parametrize("protocol", ["learned", "tuned"])
def test_paired_compares_within_a_protocol(protocol: str) -> None:
    pairs = paired_table(_both(cross_arch_records()))
    sel = pairs[(pairs["lr_protocol"] == protocol) & (pairs["arch"] == "convnet")]
    assert len(sel) == 1 and sel["diff_mean"].iloc[0] == pytest.approx(5.0)
