"""Continual reporting: protocol and memory mode keep runs apart; AIA/BWT columns; offline-vs-stream and
memory-size figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _report_fixtures import rec, write_jsonl

from satm_cl.report import build_report, plot_memory_size_sweep, plot_offline_vs_stream, records_frame
from satm_cl.report.paired import paired_markdown, paired_table
from satm_cl.report.tables import (
    accuracy_table,
    experience_table,
    method_rank,
    summarise,
    with_continual_keys,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _runs(method: str, mode: str | None, protocol: str, ipc: int, final: float) -> list[dict[str, Any]]:
    """Two class orders of a 2-step run: avg_accuracy 90 then `final` (+ order), AIA, BWT, forgetting."""
    out = []
    for s in range(2):
        cfg: dict[str, Any] = {"protocol": protocol, "classes_per_step": 5}
        if mode is not None:
            cfg["memory_mode"] = mode
        common = {"dataset": "digits", "ipc": ipc, "seed": s, "config": cfg}
        out.append(rec("continual", method, 90.0, metric="avg_accuracy", step=1, **common))
        out.append(rec("continual", method, final + s, metric="avg_accuracy", step=2, **common))
        for e, v in ((1, 40.0 + s), (2, 80.0)):
            out.append(rec("continual", method, v, metric="step_accuracy", step=2, eval_step=e, **common))
        out.append(
            rec(
                "continual",
                method,
                (90.0 + final + s) / 2,
                metric="avg_incremental_accuracy",
                step=2,
                **common,
            )
        )
        out.append(rec("continual", method, -50.0 + s, metric="bwt", step=2, **common))
        out.append(rec("continual", method, 50.0 - s, metric="forgetting", step=2, **common))
    return out


def _records() -> list[dict[str, Any]]:
    out = []
    for protocol, shift in (("retrain", 0.0), ("er_ace", -10.0)):
        for ipc, gain in ((1, 0.0), (10, 15.0)):
            out += _runs("satm", "offline", protocol, ipc, 60.0 + gain + shift)
            out += _runs("satm-stream", "stream", protocol, ipc, 55.0 + gain + shift)
            out += _runs("reservoir", "stream", protocol, ipc, 40.0 + gain + shift)
    return out


def test_old_records_get_a_mode_from_the_method() -> None:
    old = with_continual_keys(rec("continual", "mtt", 1.0, config={}))
    assert (old["protocol"], old["memory_mode"]) == ("retrain", "offline")
    assert with_continual_keys(rec("continual", "reservoir", 1.0))["memory_mode"] == "stream"
    assert "memory_mode" not in with_continual_keys(rec("in-domain", "satm", 1.0))


def test_a_reset_optimizer_run_is_its_own_protocol() -> None:
    """Runs with the optimizer's state reset at each experience never pool with Avalanche's default."""
    config = {"protocol": "naive", "reset_optimizer": True}
    reset = with_continual_keys(rec("continual", "satm", 1.0, config=config))
    kept = with_continual_keys(rec("continual", "satm", 1.0, config={"protocol": "naive"}))
    assert (reset["protocol"], kept["protocol"]) == ("naive+reset-optimizer", "naive")


def test_a_fixed_replay_batch_is_its_own_protocol() -> None:
    config = {"protocol": "naive", "reset_optimizer": True, "replay_batch": 20}
    both = with_continual_keys(rec("continual", "satm", 1.0, config=config))
    assert both["protocol"] == "naive+reset-optimizer+replay-batch-20"


def test_table_separates_protocols_and_modes_and_shows_aia_bwt() -> None:
    table = accuracy_table(summarise(_records()), "continual")
    assert {"memory_mode", "protocol"} <= set(table.columns)
    assert {"avg_incremental_accuracy · step 2", "bwt · step 2", "forgetting · step 2"} <= set(table.columns)
    row = table[(table["method"] == "satm") & (table["protocol"] == "er_ace") & (table["IPC"] == 10)]
    assert len(row) == 1 and row.iloc[0]["memory_mode"] == "offline"
    assert row.iloc[0]["avg_accuracy · step 2"] == "65.5 ± 0.7"  # 60 + 15 - 10, orders +0/+1: never pooled
    assert row.iloc[0]["bwt · step 2"] == "-49.5 ± 0.7"
    # the paired table compares within one protocol: offline minus stream is +5 in each
    pairs = paired_table(_records())
    gap = pairs[(pairs["other"] == "satm-stream")]
    assert sorted(gap["protocol"]) == ["er_ace", "er_ace", "retrain", "retrain"]
    assert list(gap["diff_mean"]) == [5.0] * 4


def test_offline_vs_stream_and_memory_size_figures(tmp_path: Path) -> None:
    frame = records_frame(_records())
    for path in (
        plot_offline_vs_stream(frame, tmp_path / "ovs.png"),
        plot_memory_size_sweep(frame, tmp_path / "size.png"),
    ):
        assert path is not None and path.read_bytes()[:8] == PNG_MAGIC
    one_ipc = records_frame([r for r in _records() if r["ipc"] == 10])
    assert plot_memory_size_sweep(one_ipc, tmp_path / "none.png") is None
    stream_only = records_frame([r for r in _records() if r["method"] != "satm"])
    assert plot_offline_vs_stream(stream_only, tmp_path / "none2.png") is None


def test_build_report_writes_the_continual_figures(tmp_path: Path) -> None:
    """One protocol's records: the report draws an accuracy-matrix heatmap per group, each redrawing the whole
    figure, so both protocols take several times as long for the same files (the two-protocol figures are
    checked by test_offline_vs_stream_and_memory_size_figures)."""
    one_protocol = [r for r in _records() if r["config"]["protocol"] == "retrain"]
    files = build_report([write_jsonl(tmp_path / "r.jsonl", one_protocol)], tmp_path / "out")
    names = {f.name for f in files}
    assert {"continual_offline_vs_stream.png", "continual_memory_size.png"} <= names
    readme = (tmp_path / "out" / "README.md").read_text()
    assert "offline: condensed (or selected) with all classes visible" in readme


def _stepped(method: str, steps: int, final: float) -> list[dict[str, Any]]:
    """Two class orders of a `steps`-step retrain run on 10 classes: avg_accuracy 90 at every step but the
    last (`final` + order), and the final model's accuracy on each experience (experience e: 50 + e)."""
    out = []
    for s in range(2):
        cfg = {"protocol": "retrain", "steps": steps, "classes_per_step": 10 // steps,
               "memory_mode": "stream"}
        common = {"dataset": "digits", "ipc": 10, "seed": s, "config": cfg}
        for step in range(1, steps + 1):
            value = final + s if step == steps else 90.0
            out.append(rec("continual", method, value, metric="avg_accuracy", step=step, **common))
        for e in range(1, steps + 1):
            out.append(rec("continual", method, 50.0 + e, metric="step_accuracy", step=steps, eval_step=e,
                           **common))
        out.append(rec("continual", method, 99.0, metric="step_accuracy", step=1, eval_step=1, **common))
    return out


def _five_and_ten_steps() -> list[dict[str, Any]]:
    return (_stepped("satm-stream-mem", 5, 80.0) + _stepped("reservoir", 5, 70.0)
            + _stepped("satm-stream-mem", 10, 60.0) + _stepped("reservoir", 10, 65.0))


def test_runs_with_other_numbers_of_steps_are_never_pooled() -> None:
    """Step 2 of a 5-step run holds other classes than step 2 of a 10-step run: separate rows, and the paired
    table compares each run kind at its own last step."""
    table = accuracy_table(summarise(_five_and_ten_steps()), "continual")
    mine = table[table["method"] == "satm-stream-mem"]
    assert sorted(mine["steps"]) == [5, 10]
    assert mine[mine["steps"] == 5].iloc[0]["avg_accuracy · step 5"] == "80.5 ± 0.7"  # not pooled with 90
    assert mine[mine["steps"] == 10].iloc[0]["avg_accuracy · step 10"] == "60.5 ± 0.7"
    pairs = paired_table(_five_and_ten_steps(), "satm-stream-mem")
    assert sorted(zip(pairs["steps"], pairs["step"], pairs["diff_mean"], strict=True)) == [
        (5, 5, 10.0),
        (10, 10, -5.0),
    ]
    text = paired_markdown(pairs)
    assert "retrain · 5 steps" in text and "retrain · 10 steps" in text  # the two rows can be told apart


def test_experience_table_reads_the_final_row_of_each_run() -> None:
    table = experience_table(summarise(_five_and_ten_steps()))
    row = table[(table["method"] == "reservoir") & (table["steps"] == 5)].iloc[0]
    # the final model's accuracies (50 + e), not step 1's 99 on experience 1
    assert [row[f"experience {e}"] for e in (1, 5)] == ["51.0 ± 0.0", "55.0 ± 0.0"]
    assert row["experience 10"] == "–"
    ten = table[(table["method"] == "reservoir") & (table["steps"] == 10)].iloc[0]
    assert ten["experience 10"] == "60.0 ± 0.0"


def test_continual_report_shows_the_per_experience_table(tmp_path: Path) -> None:
    build_report([write_jsonl(tmp_path / "r.jsonl", _five_and_ten_steps())], tmp_path / "out")
    for name in ("README.md", "continual.md"):
        text = (tmp_path / "out" / name).read_text()
        assert "Accuracy per experience after the last step" in text and "experience 10" in text


def _legends(fig: Any) -> list[Any]:
    """Every legend drawn: the panels' and the figure's."""
    return [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None] + list(fig.legends)


@pytest.mark.parametrize(
    "plot", ["plot_continual_accuracy", "plot_offline_vs_stream", "plot_memory_size_sweep"]
)
def test_a_multi_panel_continual_figure_has_one_legend_for_all_panels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plot: str
) -> None:
    """Panels share one palette, so the memories are named once for the figure, not once per panel; the one
    legend names every memory of every panel, once each, in the panels' order."""
    import satm_cl.report.plots as plots

    seen: list[Any] = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: seen.append(fig) or Path(path))
    assert getattr(plots, plot)(records_frame(_records()), tmp_path / "f.png") is not None
    (fig,) = seen
    assert sum(ax.get_visible() and ax.has_data() for ax in fig.axes) >= 2
    (legend,) = _legends(fig)
    names = [t.get_text() for t in legend.get_texts()]
    assert names == sorted({"satm (offline)", "satm-stream (stream)", "reservoir (stream)"}, key=method_rank)


def test_a_single_panel_continual_figure_keeps_its_legend_beside_the_panel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import satm_cl.report.plots as plots

    seen: list[Any] = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: seen.append(fig) or Path(path))
    one = [r for r in _records() if r["config"]["protocol"] == "retrain" and r["ipc"] == 1]
    assert plots.plot_continual_accuracy(records_frame(one), tmp_path / "f.png") is not None
    (fig,) = seen
    (legend,) = _legends(fig)
    assert not fig.legends and len({t.get_text() for t in legend.get_texts()}) == 3


@pytest.mark.parametrize(
    "plot", ["plot_continual_accuracy", "plot_continual_matrices", "plot_memory_size_sweep"]
)
def test_long_protocol_labels_wrap_in_panel_titles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plot: str
) -> None:
    """A protocol such as naive+reset-optimizer+replay-batch-20 makes a title wider than its panel; titles
    are broken into lines so neighbouring panels' titles do not overlap."""
    import satm_cl.report.plots as plots

    seen: list[Any] = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: seen.append(fig) or Path(path))
    records = _records()
    if plot == "plot_continual_matrices":  # a heatmap per group, each redrawing the figure: one row of three
        records = [r for r in records if r["config"]["protocol"] == "retrain" and r["ipc"] == 1]
    long = [{**r, "config": {**r["config"], "reset_optimizer": True, "replay_batch": 20}} for r in records]
    assert getattr(plots, plot)(records_frame(long), tmp_path / "f.png") is not None
    titles = [ax.get_title() for ax in seen[0].axes if ax.get_title()]
    assert len(titles) >= 2 and any("replay-batch-20" in t for t in titles)
    assert max(len(line) for t in titles for line in t.split("\n")) <= 48
