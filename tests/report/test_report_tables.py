"""Tables: summary statistics, wide layout, paper rows, and the Markdown/CSV/LaTeX writers."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from _report_fixtures import continual_records, cross_arch_records, in_domain_records, ood_records, rec

from satm_cl.errors import SatmError
from satm_cl.report.tables import (
    DASH,
    PAPER_COLUMNS,
    accuracy_table,
    epochs_note,
    format_cell,
    load_paper_numbers,
    n_note,
    paper_match,
    records_frame,
    summarise,
    to_latex,
    to_markdown,
    write_stage_tables,
)


def _row(summary: pd.DataFrame, **key: object) -> dict:
    sel = summary
    for k, v in key.items():
        sel = sel[sel[k].isna()] if v is None else sel[sel[k] == v]
    assert len(sel) == 1, sel
    return sel.iloc[0].to_dict()


def test_summarise_mean_sample_std_and_n() -> None:
    s = summarise(in_domain_records())
    r = _row(s, stage="in-domain", method="satm", ipc=10)
    assert r["mean"] == pytest.approx(82.0) and r["std"] == pytest.approx(2.0) and r["n"] == 3
    one = _row(s, stage="in-domain", method="mtt", ipc=1)
    assert one["n"] == 1 and math.isnan(one["std"])
    two = _row(s, stage="in-domain", method="mtt", ipc=10)
    assert two["std"] == pytest.approx(math.sqrt(2.0))  # ddof=1 of (60, 62)


def test_summarise_skips_null_values_and_keeps_optional_keys_apart() -> None:
    recs = [rec("ood", "satm", 50.0), rec("ood", "satm", None, seed=1),
            rec("ood", "satm", 30.0, test_dataset="x")]
    s = summarise(recs)
    assert _row(s, test_dataset=None)["n"] == 1
    assert _row(s, test_dataset="x")["mean"] == 30.0


def test_format_cell() -> None:
    assert format_cell(82.0, 2.0, 3) == "82.0 ± 2.0"
    assert format_cell(45.5, float("nan"), 1) == "45.5"  # a single run: the value, no "± –"
    assert format_cell(float("nan"), float("nan"), 0) == "–"


def test_in_domain_table_cells_and_paper_rows() -> None:
    s = summarise(in_domain_records())
    paper = load_paper_numbers()
    t = accuracy_table(s, "in-domain", paper=paper)
    assert list(t.columns[:1]) == ["method"]
    satm = t[t["method"] == "satm"].iloc[0]
    assert satm["cifar10 · IPC 10"] == "82.0 ± 2.0"
    # cells average 3, 2 or 1 runs: an `n` column holds each row's usual n, other cells say theirs
    assert list(t.columns[:2]) == ["method", "n"] and satm["n"] == 3
    assert satm["cifar10 · IPC 1"] == "48.0 ± 1.4 (n=2)"
    mtt = t[t["method"] == "mtt"].iloc[0]
    assert mtt["n"] == 2 and mtt["cifar10 · IPC 10"] == "61.0 ± 1.4"
    assert mtt["cifar10 · IPC 1"] == "45.5 (n=1)"
    # The paper's MTT CIFAR-10 numbers sit in a clearly labelled row right under ours.
    methods = list(t["method"])
    paper_label = next(m for m in methods if m.startswith("mtt (paper"))
    assert methods.index(paper_label) == methods.index("mtt") + 1
    prow = t[t["method"] == paper_label].iloc[0]
    assert prow["n"] == "–"  # the paper's n is not ours to state
    assert prow["cifar10 · IPC 10"] == "65.3 ± 0.7" and prow["cifar10 · IPC 1"] == "46.3 ± 0.8"
    # No paper row where nothing was measured to compare with, and the full-data row matches any IPC.
    assert not any(m.startswith("dc (paper") for m in methods)
    full_paper = t[t["method"].str.startswith("full (paper")].iloc[0]
    assert full_paper["cifar10 · full data"] == "84.8 ± 0.1"


def test_paper_dataset_mapping() -> None:
    paper = load_paper_numbers()
    assert paper_match(paper, "dc", "mnist5k", 10)[0]["mean"] == 97.4
    assert paper_match(paper, "dsa", "fashion-mnist", 50)[0]["mean"] == 88.7
    assert paper_match(paper, "mtt", "tinyimagenet", 1)[0]["mean"] == 8.8
    assert paper_match(paper, "mtt", "unknown-data", 1) == []


def test_paper_numbers_csv_columns() -> None:
    paper = load_paper_numbers()
    assert tuple(paper.columns) == PAPER_COLUMNS
    assert len(paper) > 20
    assert set(paper["metric"]) == {"test_accuracy"}
    assert paper["mean"].between(0, 100).all()
    assert paper["source"].notna().all()


def test_load_paper_numbers_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "p.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(SatmError, match="lack columns"):
        load_paper_numbers(bad)
    with pytest.raises(SatmError, match="not found"):
        load_paper_numbers(tmp_path / "missing.csv")


def test_other_stage_layouts() -> None:
    s = summarise(cross_arch_records() + ood_records() + continual_records())
    ca = accuracy_table(s, "cross-arch")
    assert {"convnet", "resnet18", "vgg11"} <= set(ca.columns)
    assert ca[ca["method"] == "satm"].iloc[0]["convnet"] == "60.5 ± 0.7"
    ood = accuracy_table(s, "ood")
    assert {"in-domain", "cifar10-c", "cifar10.1"} <= set(ood.columns)
    assert ood[ood["method"] == "mtt"].iloc[0]["in-domain"] == "66.5 ± 0.7"
    cl = accuracy_table(s, "continual")
    assert "avg_accuracy · step 5" in cl.columns and "forgetting · step 5" in cl.columns
    assert not any("step_accuracy" in c for c in cl.columns)
    assert cl[cl["method"] == "satm"].iloc[0]["forgetting · step 5"] == "21.0 ± 1.0"


def test_markdown_and_latex_renderers() -> None:
    t = pd.DataFrame({"method": ["a_b", "c|d"], "x · IPC 1": ["1.0 ± 0.1", "–"]})
    md = to_markdown(t)
    lines = md.strip().splitlines()
    assert lines[0].startswith("| method") and lines[1].startswith("| :--") and lines[1].endswith(": |")
    assert "c\\|d" in md and len(lines) == 4
    tex = to_latex(t, caption="cap")
    assert r"\begin{tabular}{lr}" in tex and r"a\_b" in tex and r"1.0 $\pm$ 0.1" in tex and "--" in tex


def test_write_stage_tables(tmp_path: Path) -> None:
    s = summarise(in_domain_records())
    files = write_stage_tables(s, "in-domain", tmp_path, paper=load_paper_numbers())
    assert [f.name for f in files] == ["in-domain.md", "in-domain.csv", "in-domain.tex"]
    md, _, tex = (f.read_text() for f in files)
    assert "| satm" in md and "82.0 ± 2.0" in md and "mtt (paper: Cazenavette et al. 2022 (MTT))" in md
    assert r"82.0 $\pm$ 2.0" in tex and r"\end{tabular}" in tex
    frame = pd.read_csv(files[1])
    row = frame[(frame["method"] == "satm") & (frame["ipc"] == 10)].iloc[0]
    assert row["mean"] == pytest.approx(82.0) and row["std"] == pytest.approx(2.0) and row["n"] == 3
    mtt = frame[(frame["method"] == "mtt") & (frame["ipc"] == 10)].iloc[0]
    assert mtt["paper_mean"] == pytest.approx(65.3) and mtt["paper_std"] == pytest.approx(0.7)
    assert "paper_source" in frame.columns


def test_runs_trained_for_other_epochs_get_their_own_rows() -> None:
    """Two evaluations of one method at 2 and 60 epochs averaged to 31.1 ± 25.2 in one cell."""
    recs = [rec("in-domain", "random", 16.5, seed=0, config={"epochs": 2}),
            rec("in-domain", "random", 16.7, seed=1, config={"epochs": 2}),
            rec("in-domain", "random", 60.2, seed=5, config={"epochs": 60})]
    summary = summarise(recs)
    assert sorted(zip(summary["epochs"], summary["n"], strict=True)) == [(2, 2), (60, 1)]
    table = accuracy_table(summary, "in-domain")
    assert "epochs" in table.columns and len(table) == 2
    same = summarise([r for r in recs if r["config"]["epochs"] == 2])
    assert "epochs" not in accuracy_table(same, "in-domain").columns  # one length: no extra column


def test_n_of_every_cell_is_in_the_caption_when_it_is_one_number(tmp_path: Path) -> None:
    """Three class orders behind every continual cell: no `n` column, the caption says n = 3."""
    s = summarise(continual_records())
    table = accuracy_table(s, "continual")
    assert "n" not in table.columns and table.attrs["n"] == 3
    assert n_note(table, "continual") == " n = 3 class orders per cell."
    md, _, tex = (f.read_text() for f in write_stage_tables(s, "continual", tmp_path))
    assert "mean ± std over class orders." in md and "n = 3 class orders per cell." in md
    assert "n = 3 class orders per cell." in tex.splitlines()[0]  # the LaTeX caption comment
    assert "n = 3 class orders per cell." in md.split("### Accuracy per experience")[1]
    single = accuracy_table(summarise([rec("in-domain", "satm", 70.0)]), "in-domain")
    assert single.iloc[0]["cifar10 · IPC 10"] == "70.0" and "single run" in n_note(single, "in-domain")


def test_n_column_left_aligned_in_markdown_and_latex(tmp_path: Path) -> None:
    s = summarise(in_domain_records())
    md, _, tex = (f.read_text() for f in write_stage_tables(s, "in-domain", tmp_path))
    header, rule = md.split("\n")[4:6]
    assert header.startswith("| method") and header.split("|")[2].strip() == "n"
    assert rule.split("|")[2].strip().startswith(":")  # a label column, not a number column
    assert r"\begin{tabular}{ll" in tex and "n: runs (seeds) behind each row's cells" in md


def test_a_seed_measured_twice_counts_once() -> None:
    """Class order 0 from two condensed sets and order 1 from one: n = 2 orders, not 3 samples."""
    recs = [rec("continual", "satm", 60.0, seed=0, metric="avg_accuracy", step=5, config={"artifact": "a"}),
            rec("continual", "satm", 70.0, seed=0, metric="avg_accuracy", step=5, config={"artifact": "b"}),
            rec("continual", "satm", 90.0, seed=1, metric="avg_accuracy", step=5, config={"artifact": "a"})]
    row = summarise(recs).iloc[0]
    assert row["n"] == 2 and row["runs"] == 3
    assert row["mean"] == pytest.approx(77.5)  # (65 + 90) / 2: order 0 is the mean of its two sets
    assert row["std"] == pytest.approx(math.sqrt(2) * 12.5)
    frame = records_frame(recs)
    assert sorted(zip(frame["seed"], frame["value"], strict=True)) == [(0, 65.0), (1, 90.0)]


def test_cross_arch_epochs_by_design_do_not_split_rows() -> None:
    """`--epochs 30 --cross-arch-epochs 10` gave a staircase (`10 | – | 23.1` / `30 | 74.8 | –`): one row per
    method now, the epochs per architecture in the caption note; epochs mixed in one row and column
    still split, and epochs differing per cell say so in the cells."""
    recs = [rec("cross-arch", "satm", 70.0 + s + (5 if a == "convnet" else 0), arch=a, seed=s,
                config={"epochs": 30 if a == "convnet" else 10})
            for a in ("convnet", "mlp") for s in range(2)]
    table = accuracy_table(summarise(recs), "cross-arch")
    assert "epochs" not in table.columns and len(table) == 1
    assert DASH not in set(table.iloc[0])
    assert epochs_note(table) == " Training epochs per arch: convnet: 30; mlp: 10."
    baseline = [rec("cross-arch", "random", 20.0 + s, arch=a, seed=s, config={"epochs": 10})
                for a in ("convnet", "mlp") for s in range(2)]
    mixed = accuracy_table(summarise(recs + baseline), "cross-arch")
    assert len(mixed) == 2 and "epochs" not in mixed.columns
    assert mixed.loc[mixed["method"] == "satm", "convnet"].item().endswith("(30 ep)")
    assert mixed.loc[mixed["method"] == "random", "convnet"].item().endswith("(10 ep)")
    assert "(k ep)" in epochs_note(mixed)
    inside = [*recs, rec("cross-arch", "satm", 40.0, arch="mlp", seed=9, config={"epochs": 300})]
    assert "epochs" in accuracy_table(summarise(inside), "cross-arch").columns  # one cell, two lengths


def test_one_training_length_is_stated_once() -> None:
    """Every run at 30 epochs: no epochs column, but the caption note says 30 epochs (it was invisible)."""
    recs = [rec("in-domain", "satm", 80.0 + s, seed=s, config={"epochs": 30}) for s in range(2)]
    table = accuracy_table(summarise(recs), "in-domain")
    assert "epochs" not in table.columns
    assert epochs_note(table) == " All runs trained for 30 epochs."
    assert epochs_note(accuracy_table(summarise([rec("in-domain", "satm", 80.0)]), "in-domain")) == ""
