"""Paired comparisons: units averaged over runs, paired on shared units only, statistics checked by hand."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from _report_fixtures import continual_records, rec, write_jsonl

from satm_cl.report import build_report
from satm_cl.report.paired import (
    interval_and_mde,
    paired_markdown,
    paired_stats,
    paired_table,
    unit_means,
)


def _units(method: str, per_unit: dict[int, list[float]]) -> list[dict[str, Any]]:
    """Runs of `method` under base seeds (the units), recorded with run seeds base + r."""
    return [
        rec("in-domain", method, v, seed=base + r, config={"base_seed": base})
        for base, values in per_unit.items()
        for r, v in enumerate(values)
    ]


def test_paired_stats_by_hand() -> None:
    s = paired_stats([3.0, 5.0, 4.0, 6.0, 1.0], [1.0, 2.0, 2.0, 3.0, 2.0])
    # differences 2, 3, 2, 3, -1: mean 1.8, sample std sqrt(2.7); 4 wins, 1 loss
    assert s["n"] == 5 and s["wins"] == 4 and s["losses"] == 1
    assert s["diff_mean"] == pytest.approx(1.8) and s["diff_std"] == pytest.approx(math.sqrt(2.7))
    assert s["sign_test_p"] == pytest.approx(12 / 32)  # 2 * P(X <= 1), X ~ Bin(5, 1/2)
    t = 1.8 / (math.sqrt(2.7) / math.sqrt(5))
    assert 0.05 < s["t_test_p"] < 0.1 and t == pytest.approx(2.449, abs=1e-3)  # t_4 two-sided p ~ 0.070


def test_interval_and_mde_by_hand() -> None:
    # differences 2, 3, 2, 3, -1 as above: se = sqrt(2.7 / 5); t_0.975,4 = 2.7764, t_0.8,4 = 0.9410
    s = paired_stats([3.0, 5.0, 4.0, 6.0, 1.0], [1.0, 2.0, 2.0, 3.0, 2.0])
    se = math.sqrt(2.7 / 5)
    assert s["ci_low"] == pytest.approx(1.8 - 2.7764 * se, abs=1e-3)
    assert s["ci_high"] == pytest.approx(1.8 + 2.7764 * se, abs=1e-3)
    assert s["ci_low"] < 0 < s["ci_high"]  # agrees with p ~ 0.07 > 0.05
    assert s["mde"] == pytest.approx((2.7764 + 0.9410) * se, abs=1e-3)
    assert interval_and_mde(0.0, 1.2, 5)[2] == pytest.approx(1.66 * 1.2, abs=0.01)  # the README's 1.66 sd
    assert all(math.isnan(x) for x in interval_and_mde(1.0, float("nan"), 1))


def test_paired_stats_degenerate() -> None:
    s = paired_stats([1.0, 2.0], [1.0, 2.0])
    assert s["wins"] == s["losses"] == 0 and math.isnan(s["sign_test_p"]) and math.isnan(s["t_test_p"])
    with pytest.raises(ValueError):
        paired_stats([1.0], [1.0, 2.0])


def test_units_average_runs_and_pair_on_shared_units_only() -> None:
    records = _units("satm", {0: [90.0, 92.0], 10: [80.0, 80.0], 20: [70.0, 70.0]})
    records += _units("mtt", {0: [89.0, 89.0], 10: [81.0, 81.0], 30: [10.0, 10.0]})  # unit 30 has no pair
    means = unit_means(records)
    (key,) = means
    assert means[key]["satm"] == {0: 91.0, 10: 80.0, 20: 70.0}
    table = paired_table(records)
    assert len(table) == 1
    row = table.iloc[0]
    assert (row["other"], row["n"], row["wins"], row["losses"]) == ("mtt", 2, 1, 1)
    assert row["diff_mean"] == pytest.approx(0.5)  # (+2) and (-1)


def test_min_pairs_and_unknown_method() -> None:
    records = _units("satm", {0: [90.0]}) + _units("mtt", {0: [80.0]})
    assert paired_table(records).empty  # one unit is not a comparison
    assert len(paired_table(records, min_pairs=1)) == 1
    assert paired_table(records, method="dm").empty


def test_groups_stay_apart_and_nan_values_are_skipped() -> None:
    records = _units("satm", {0: [90.0], 10: [91.0]}) + _units("mtt", {0: [80.0], 10: [81.0]})
    records += [{**r, "ipc": 1} for r in _units("mtt", {0: [10.0], 10: [11.0]})]  # no satm at IPC 1
    records += [rec("in-domain", "mtt", float("nan"), seed=20, config={"base_seed": 20})]
    table = paired_table(records)
    assert list(table["ipc"]) == [10] and table.iloc[0]["diff_mean"] == pytest.approx(10.0)


def test_continual_pairs_by_order_at_the_last_step() -> None:
    table = paired_table(continual_records(steps=5))
    assert list(table["metric"]) == ["avg_accuracy"] and list(table["step"]) == [5]
    row = table.iloc[0]
    # satm 90 - 40 + s vs reservoir 80 - 40 + s for orders s = 0, 1, 2
    assert (row["other"], row["n"], row["diff_mean"], row["wins"]) == ("reservoir", 3, 10.0, 3)


def test_report_writes_the_paired_section(tmp_path: Path) -> None:
    # unit means 90.5 vs 88 and 85.5 vs 84: differences 2.5 and 1.5
    records = _units("satm", {0: [90.0, 91.0], 10: [85.0, 86.0]}) + _units("mtt", {0: [88.0], 10: [84.0]})
    out = tmp_path / "report"
    written = build_report([write_jsonl(tmp_path / "r.jsonl", records)], out)
    assert out / "paired.csv" in written
    readme = (out / "README.md").read_text()
    assert "## Paired comparisons" in readme and "| mtt | 2 | +2.00 ± 0.71 | 2/2 |" in readme
    assert paired_markdown(paired_table(records)).splitlines()[2] in readme


def test_nan_and_absent_keys_pair_together() -> None:
    # a record whose test_dataset / step went through a CSV comes back as NaN; it is the same group as None
    satm = _units("satm", {0: [90.0], 10: [91.0]})
    nan = float("nan")
    mtt = [{**r, "test_dataset": nan, "step": nan} for r in _units("mtt", {0: [80.0], 10: [81.0]})]
    table = paired_table(satm + mtt)
    assert len(table) == 1 and table.iloc[0]["n"] == 2 and table.iloc[0]["diff_mean"] == pytest.approx(10.0)
