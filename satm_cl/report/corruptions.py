"""Corruption robustness from `ood` records on corrupted test sets (`<dataset>-C/<corruption>/<severity>`).

For each evaluated set and network (method, dataset, IPC, arch, LR protocol), with every accuracy first
averaged over seeds:
- clean accuracy: the same trained networks on the uncorrupted test split (the `ood` row without a
  `test_dataset`);
- per-corruption accuracy: the mean over that corruption's severities;
- mean corruption accuracy (mCA): the mean of the per-corruption accuracies;
- relative robustness: mCA / clean accuracy (1.0 = no loss under corruption).
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from satm_cl.report.tables import (
    DASH,
    _is_missing,
    lr_protocol_of,
    method_rank,
    parse_corrupted,
    to_markdown,
)

ROW_KEYS = ("method", "dataset", "ipc", "arch", "lr_protocol")
LONG_COLUMNS = (*ROW_KEYS, "corruption", "severity", "mean", "std", "n")


def corruption_long(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per set x corruption x severity (severity 0, corruption "clean": the uncorrupted test split
    of the same trained networks): mean and sample std of accuracy over seeds, and n."""
    values: dict[tuple[Any, ...], list[float]] = {}
    corrupted_sets: set[tuple[Any, ...]] = set()
    clean: dict[tuple[Any, ...], list[float]] = {}
    for rec in records:
        if rec.get("stage") != "ood" or rec.get("metric") != "test_accuracy" or _is_missing(rec.get("value")):
            continue
        row = tuple(lr_protocol_of(rec) if k == "lr_protocol" else rec.get(k) for k in ROW_KEYS)
        parsed = parse_corrupted(rec.get("test_dataset"))
        if parsed is not None:
            corrupted_sets.add(row)
            values.setdefault((*row, parsed[1], parsed[2]), []).append(float(rec["value"]))
        elif _is_missing(rec.get("test_dataset")):
            clean.setdefault(row, []).append(float(rec["value"]))
    for row in corrupted_sets & set(clean):
        values[(*row, "clean", 0)] = clean[row]
    out = []
    for key, vals in values.items():
        std = statistics.stdev(vals) if len(vals) > 1 else float("nan")
        out.append(
            {
                **dict(zip((*ROW_KEYS, "corruption", "severity"), key, strict=True)),
                "mean": statistics.fmean(vals),
                "std": std,
                "n": len(vals),
            }
        )
    frame = pd.DataFrame(out, columns=list(LONG_COLUMNS))
    if frame.empty:
        return frame
    order = sorted(
        range(len(frame)),
        key=lambda i: (
            method_rank(str(frame["method"][i])),
            *(str(frame[k][i]) for k in ROW_KEYS[1:]),
            frame["corruption"][i] != "clean",
            str(frame["corruption"][i]),
            int(frame["severity"][i]),
        ),
    )
    return frame.iloc[order].reset_index(drop=True)


def corruption_summary(long: pd.DataFrame) -> pd.DataFrame:
    """One row per set: clean accuracy, each corruption's accuracy (mean over severities), the mean
    corruption accuracy `mCA` and `relative_robustness` = mCA / clean (NaN without a clean number)."""
    if long.empty:
        return pd.DataFrame(columns=[*ROW_KEYS, "clean", "mCA", "relative_robustness"])
    corruptions = sorted(set(long["corruption"]) - {"clean"})
    rows = []
    for key, part in long.groupby(list(ROW_KEYS), sort=False, dropna=False):
        row: dict[str, Any] = dict(zip(ROW_KEYS, key, strict=True))
        clean = part[part["corruption"] == "clean"]["mean"]
        row["clean"] = float(clean.iloc[0]) if len(clean) else float("nan")
        per = {}
        for name in corruptions:
            sel = part[part["corruption"] == name]["mean"]
            per[name] = statistics.fmean(sel) if len(sel) else float("nan")
        row.update(per)
        present = [v for v in per.values() if not math.isnan(v)]
        row["mCA"] = statistics.fmean(present) if present else float("nan")
        clean_ok = not math.isnan(row["clean"]) and row["clean"] > 0
        row["relative_robustness"] = row["mCA"] / row["clean"] if clean_ok else float("nan")
        rows.append(row)
    return pd.DataFrame(rows, columns=[*ROW_KEYS, "clean", *corruptions, "mCA", "relative_robustness"])


def corruption_markdown(summary: pd.DataFrame) -> str:
    """The summary as a Markdown table (accuracies to one decimal, relative robustness to three)."""

    def fmt(col: str, v: Any) -> str:
        if col == "ipc" and _is_missing(v):
            return "full data"
        if col in ROW_KEYS:
            return DASH if _is_missing(v) else str(v)
        if _is_missing(v):
            return DASH
        return f"{v:.3f}" if col == "relative_robustness" else f"{v:.1f}"

    table = pd.DataFrame(
        [
            {("IPC" if c == "ipc" else c): fmt(c, r[c]) for c in summary.columns}
            for r in summary.to_dict("records")
        ]
    )
    return to_markdown(table, len(ROW_KEYS))


def plot_corruptions(long: pd.DataFrame, path: str | Path) -> Path | None:
    """Accuracy vs severity (0 = clean) per corruption, one line per evaluated set; None without data."""
    from satm_cl.report.plots import _grid, _legend_outside, _save  # the plotting backend lives there

    if long.empty or not (long["corruption"] != "clean").any():
        return None
    labels = [
        " · ".join(
            p
            for p in (
                str(r["method"]),
                "" if _is_missing(r["ipc"]) else f"IPC {r['ipc']}",
                str(r["arch"]),
                f"{r['lr_protocol']} LR",
            )
            if p
        )
        for r in long.to_dict("records")
    ]
    data = long.assign(label=labels)
    corruptions = sorted(set(data["corruption"]) - {"clean"})
    fig, axes = _grid(len(corruptions), ncols=3, size=(4.0, 3.2))
    for ax, name in zip(axes, corruptions, strict=True):
        for label in sorted(set(data["label"]), key=method_rank):
            part = data[(data["label"] == label) & data["corruption"].isin(["clean", name])]
            part = part.sort_values("severity")
            ax.errorbar(
                part["severity"],
                part["mean"],
                yerr=part["std"].fillna(0.0),
                marker="o",
                capsize=3,
                label=label,
            )
        ax.set_title(name)
        ax.set_xlabel("severity (0 = clean)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_xticks([0, 1, 2, 3])
    _legend_outside(axes[-1], "set")
    return _save(fig, path)


def corruption_section(records: Iterable[Mapping[str, Any]], out: Path) -> tuple[list[Path], list[str]]:
    """Write corruptions.{md,csv}, corruptions_long.csv and plots/corruptions.png into `out` when the
    records hold corrupted-test-set rows; returns the files and the README lines that link them."""
    long = corruption_long(records)
    if long.empty:
        return [], []
    out = Path(out)
    summary = corruption_summary(long)
    md, csv, long_csv = out / "corruptions.md", out / "corruptions.csv", out / "corruptions_long.csv"
    caption = (
        "Test accuracy (%) under each corruption (mean over its 3 severities, each a mean over seeds), "
        "the clean test split for the same networks, mean corruption accuracy (mCA) and relative "
        "robustness (mCA / clean)."
    )
    table = corruption_markdown(summary)
    md.write_text(f"# Corruptions\n\n{caption}\n\n{table}")
    summary.to_csv(csv, index=False)
    long.to_csv(long_csv, index=False)
    files = [md, csv, long_csv]
    lines = [
        "## ood: corruptions",
        "",
        caption,
        "",
        "[md](corruptions.md) · [csv](corruptions.csv) · [per severity](corruptions_long.csv)",
        "",
        table,
    ]
    png = plot_corruptions(long, out / "plots" / "corruptions.png")
    if png is not None:
        files.append(png)
        rel = Path(os.path.relpath(png, out)).as_posix()
        lines += [f"![Accuracy vs corruption severity]({rel})", ""]
    return files, lines
