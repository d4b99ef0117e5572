"""Summaries of tidy records: mean ± std over seeds, wide per-stage tables, and their writers.

Tables are plain DataFrames of strings; Markdown and LaTeX are rendered here (no `tabulate`), CSV keeps
the numbers. Where a measured in-domain cell has a published counterpart (benchmarks/paper_numbers.csv),
a row labelled "<method> (paper: <source>)" is placed under the measured row.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from satm_cl.errors import SatmError

GROUP_KEYS = ("stage", "method", "dataset", "ipc", "arch", "protocol", "memory_mode", "steps", "metric",
              "test_dataset", "step", "eval_step", "lr_protocol", "epochs")
STAGES = ("in-domain", "cross-arch", "ood", "continual")
# Stages whose networks train with an evaluation LR protocol; their records without one were `learned`.
LR_PROTOCOL_STAGES = ("in-domain", "cross-arch", "ood")
PAPER_COLUMNS = ("source", "method", "dataset", "ipc", "arch", "metric", "mean", "std")
PAPER_CSV = Path(__file__).resolve().parents[2] / "benchmarks" / "paper_numbers.csv"

# Our dataset names -> the name the papers use (the `dataset` column of paper_numbers.csv).
PAPER_DATASET = {
    "mnist": "MNIST",
    "mnist5k": "MNIST",
    "fashion-mnist": "Fashion-MNIST",
    "fashionmnist": "Fashion-MNIST",
    "cifar10": "CIFAR-10",
    "cifar100": "CIFAR-100",
    "svhn": "SVHN",
    "tinyimagenet": "Tiny ImageNet",
}
METHOD_ORDER = ("full", "random", "herding", "kcenter", "forgetting", "dc", "dsa", "dm", "mtt", "tesla",
                "ftd", "satm", "reservoir", "gdumb")
DASH = "–"

Layout = str | Sequence[str]
# Default (rows, columns) per stage; a stage not listed here uses the "in-domain" layout.
STAGE_LAYOUT: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "in-domain": (("method",), ("dataset", "ipc")),
    "cross-arch": (("method", "dataset", "ipc"), ("arch",)),
    "ood": (("method", "dataset", "ipc", "arch"), ("test_dataset",)),
    "continual": (("method", "memory_mode", "protocol", "dataset", "ipc", "steps"), ("metric", "step")),
}
STAGE_METRICS = {"continual": ("avg_accuracy", "avg_incremental_accuracy", "bwt", "forgetting")}
# Continual memories whose images depend on classes not yet seen, for records written before `memory_mode`
# was recorded (newer records carry it in their config).
OFFLINE_MEMORIES = ("satm", "mtt", "herding")
MEMORY_MODE_NOTE = ("offline: condensed (or selected) with all classes visible; "
                    "stream: built only from the experiences seen so far")


def with_continual_keys(rec: Mapping[str, Any]) -> dict[str, Any]:
    """A continual record with `protocol`, `memory_mode` and `steps` lifted from its config (others
    unchanged), so runs under different protocols, offline/stream memories or numbers of steps (step 2 of a
    5-step run holds other classes than step 2 of a 10-step one) are never pooled."""
    out = dict(rec)
    if out.get("stage") != "continual":
        return out
    raw = out.get("config")
    config: dict[str, Any] = raw if isinstance(raw, dict) else {}
    protocol = config.get("protocol", "retrain")
    # a strategy run with the optimizer's state cleared at each experience, or with a fixed replay batch, is
    # another protocol in tables
    if config.get("reset_optimizer"):
        protocol += "+reset-optimizer"
    if config.get("replay_batch") is not None:
        protocol += f"+replay-batch-{config['replay_batch']}"
    out.setdefault("protocol", protocol)
    default = "offline" if out.get("method") in OFFLINE_MEMORIES else "stream"
    out.setdefault("memory_mode", config.get("memory_mode", default))
    out.setdefault("steps", config.get("steps"))
    return out


def _is_missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


# `test_dataset` of a corrupted copy of a test split: `<dataset>-C/<corruption>/<severity>`
# (written by satm_cl.data.corruptions.corrupted_name).
CORRUPTED = re.compile(r"^(?P<dataset>.+)-C/(?P<corruption>[A-Za-z0-9_]+)/(?P<severity>\d+)$")


def parse_corrupted(test_dataset: Any) -> tuple[str, str, int] | None:
    """(dataset, corruption, severity) of a corrupted test set's label, None for anything else."""
    match = CORRUPTED.match(test_dataset) if isinstance(test_dataset, str) else None
    return None if match is None else (match["dataset"], match["corruption"], int(match["severity"]))


def is_corrupted(test_dataset: Any) -> bool:
    """Whether a `test_dataset` names a corrupted copy of a test split (see `parse_corrupted`)."""
    return parse_corrupted(test_dataset) is not None


def _sort_key(x: Any) -> tuple[int, Any]:
    """Order None first, then numbers, then strings (so mixed key columns sort without TypeError)."""
    if _is_missing(x):
        return (0, 0)
    if isinstance(x, int | float):
        return (1, float(x))
    return (2, str(x))


def epochs_text(n: Any) -> str:
    """"1 epoch", "5 epochs"."""
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def method_rank(method: str) -> tuple[int, str]:
    """Sort key putting known methods in the usual table order and the rest alphabetically after; a label's
    parenthesised suffix (`dc (paper: …)`, a continual memory's `satm (offline)`) ranks as its method."""
    base = str(method).split(" (")[0]
    return (METHOD_ORDER.index(base) if base in METHOD_ORDER else len(METHOD_ORDER), str(method))


def lr_protocol_of(rec: Mapping[str, Any]) -> Any:
    """A record's evaluation LR protocol: its own, `learned` for an evaluation record written before
    protocols existed, None for stages without one (continual)."""
    value = rec.get("lr_protocol")
    if _is_missing(value):
        return "learned" if rec.get("stage") in LR_PROTOCOL_STAGES else None
    return value


def _group_value(rec: Mapping[str, Any], key: str) -> Any:
    if key == "epochs":  # training length, from the record's config: 2- and 60-epoch runs are not pooled
        config = rec.get("config")
        return config.get("epochs") if isinstance(config, dict) else None
    return lr_protocol_of(rec) if key == "lr_protocol" else rec.get(key)


def group_key(rec: Mapping[str, Any]) -> tuple[Any, ...]:
    """The summary group of a record (GROUP_KEYS values, None for absent)."""
    return tuple(None if _is_missing(_group_value(rec, k)) else _group_value(rec, k) for k in GROUP_KEYS)


def records_frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Records as a tidy DataFrame: the group keys (object dtype, None when absent), seed, value, config.

    One row per seed of a group: a seed measured more than once (e.g. one class order run with two
    condensed sets) is one row valued by the mean of its measurements (config of the first), as in
    `summarise`, so plots weigh seeds as the tables do."""
    rows: list[dict[str, Any]] = []
    repeats: dict[tuple[Any, ...], tuple[dict[str, Any], list[float]]] = {}
    for rec in map(with_continual_keys, records):
        row = {k: _group_value(rec, k) for k in GROUP_KEYS}
        value = rec.get("value")
        row["seed"] = rec.get("seed")
        row["value"] = float("nan") if value is None else float(value)
        row["config"] = rec.get("config") if isinstance(rec.get("config"), dict) else {}
        if row["seed"] is None or _is_missing(row["value"]):
            rows.append(row)
            continue
        key = (*group_key(rec), row["seed"])
        if key in repeats:
            repeats[key][1].append(row["value"])
        else:
            repeats[key] = (row, [row["value"]])
            rows.append(row)
    for row, values in repeats.values():
        row["value"] = statistics.fmean(values)
    return _frame(rows, [*GROUP_KEYS, "seed", "config"], ["value"])


def seed_values(records: Iterable[Mapping[str, Any]]) -> dict[tuple[Any, ...], dict[Any, list[float]]]:
    """{group key: {seed: values}} of the non-null values; records without a seed are each their own
    sample (keyed by their position), since nothing says they repeat another one."""
    groups: dict[tuple[Any, ...], dict[Any, list[float]]] = {}
    for i, rec in enumerate(map(with_continual_keys, records)):
        per_seed = groups.setdefault(group_key(rec), {})
        value = rec.get("value")
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        seed = rec.get("seed")
        per_seed.setdefault(("unseeded", i) if seed is None else seed, []).append(float(value))
    return groups


def summarise(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Mean, sample std (ddof=1; NaN for a single sample), n and runs per GROUP_KEYS; null values are not
    counted. A sample is one seed (class order, for continual): a seed measured more than once with other
    values (two files or sets sharing it) counts once, valued by the mean of its measurements, so n never
    counts a seed twice; `runs` is the number of measurements behind the n samples."""
    groups = seed_values(records)
    rows = []
    for key in sorted(groups, key=lambda t: tuple(_sort_key(x) for x in t)):
        vals = [statistics.fmean(v) for v in groups[key].values()]
        mean = statistics.fmean(vals) if vals else float("nan")
        std = statistics.stdev(vals) if len(vals) > 1 else float("nan")
        runs = sum(len(v) for v in groups[key].values())
        rows.append({**dict(zip(GROUP_KEYS, key, strict=True)), "mean": mean, "std": std, "n": len(vals),
                     "runs": runs})
    frame = _frame(rows, list(GROUP_KEYS), ["mean", "std", "n", "runs"])
    frame["n"] = frame["n"].astype(int)
    frame["runs"] = frame["runs"].astype(int)
    return frame


def _frame(rows: list[dict[str, Any]], object_cols: list[str], numeric_cols: list[str]) -> pd.DataFrame:
    """Build a frame whose key columns stay object dtype (ints stay ints, absent stays None)."""
    data: dict[str, pd.Series] = {}
    for c in [*object_cols, *numeric_cols]:
        values = [r.get(c) for r in rows]
        data[c] = pd.Series(values, dtype=object) if c in object_cols else pd.Series(values, dtype=float)
    return pd.DataFrame(data)


def format_cell(mean: float, std: float, n: float | None = None) -> str:
    """One decimal "mean ± std"; just the mean when there is no std (a single run), "–" when no value."""
    if _is_missing(mean):
        return DASH
    if _is_missing(std):
        return f"{mean:.1f}"
    return f"{mean:.1f} ± {std:.1f}"


# ----------------------------------------------------------------------------------------------- paper


def load_paper_numbers(path: str | Path | None = None) -> pd.DataFrame:
    """Read benchmarks/paper_numbers.csv (or `path`); an absent default file gives an empty table."""
    p = Path(path) if path is not None else PAPER_CSV
    if not p.is_file():
        if path is not None:
            raise SatmError(f"paper numbers file not found: {p}")
        return pd.DataFrame(columns=list(PAPER_COLUMNS))
    try:
        frame = pd.read_csv(p, comment="#")
    except (OSError, ValueError) as exc:
        raise SatmError(f"cannot read paper numbers {p}: {str(exc).splitlines()[0]}") from None
    missing = [c for c in PAPER_COLUMNS if c not in frame.columns]
    if missing:
        raise SatmError(f"{p}: paper numbers lack columns {', '.join(missing)}")
    frame["ipc"] = pd.to_numeric(frame["ipc"], errors="coerce")
    return frame


def paper_dataset(dataset: Any) -> str | None:
    """The paper's name for one of our dataset names (None when we have no equivalent)."""
    if dataset is None:
        return None
    return PAPER_DATASET.get(str(dataset).lower())


def paper_match(paper: pd.DataFrame, method: Any, dataset: Any, ipc: Any,
                metric: str = "test_accuracy") -> list[dict[str, Any]]:
    """Paper rows for (method, dataset-equivalent, ipc); a blank paper ipc (whole dataset) matches any ipc."""
    name = paper_dataset(dataset)
    if paper.empty or name is None:
        return []
    sel = paper[(paper["method"].str.lower() == str(method).lower()) & (paper["dataset"] == name)
                & (paper["metric"] == metric)]
    out = []
    for row in sel.to_dict("records"):
        if _is_missing(row["ipc"]) or (not _is_missing(ipc) and int(row["ipc"]) == int(ipc)):
            out.append(row)
    return out


def attach_paper(summary: pd.DataFrame, paper: pd.DataFrame | None) -> pd.DataFrame:
    """Add paper_mean, paper_std, paper_source to in-domain test_accuracy rows (first matching source)."""
    out = summary.copy()
    means, stds, sources = [], [], []
    for row in out.to_dict("records"):
        hits = [] if paper is None or row["stage"] != "in-domain" else paper_match(
            paper, row["method"], row["dataset"], row["ipc"], row["metric"])
        hit = hits[0] if hits else None
        means.append(float(hit["mean"]) if hit else float("nan"))
        stds.append(float(hit["std"]) if hit and not _is_missing(hit["std"]) else float("nan"))
        sources.append(hit["source"] if hit else None)
    out["paper_mean"], out["paper_std"], out["paper_source"] = means, stds, sources
    return out


# ----------------------------------------------------------------------------------------------- tables


def with_lr_protocol(keys: tuple[str, ...], rows: pd.DataFrame) -> tuple[str, ...]:
    """`keys` plus `lr_protocol` when `rows` hold more than the default (`learned`) protocol, so tuned
    and learned numbers get separate rows instead of sharing a cell."""
    if "lr_protocol" in keys or "lr_protocol" not in rows:
        return keys
    protocols = {p for p in rows["lr_protocol"] if not _is_missing(p)}
    return (*keys, "lr_protocol") if protocols - {"learned"} else keys


def with_epochs(keys: tuple[str, ...], rows: pd.DataFrame, within: tuple[str, ...] = ()) -> tuple[str, ...]:
    """`keys` plus `epochs` when `rows` hold runs trained for different numbers of epochs (separate rows,
    not one cell averaging them); with `within` (e.g. method, arch), only when the epochs differ inside one
    such group (cross-arch trains other architectures for other epochs by design: not a reason to split)."""
    if "epochs" in keys or "epochs" not in rows:
        return keys
    seen: dict[tuple[Any, ...], set[Any]] = {}
    for _, row in rows.iterrows():
        if not _is_missing(row["epochs"]):
            seen.setdefault(tuple(str(row.get(k)) for k in within), set()).add(row["epochs"])
    return (*keys, "epochs") if any(len(v) > 1 for v in seen.values()) else keys


def _as_keys(layout: Layout) -> tuple[str, ...]:
    return (layout,) if isinstance(layout, str) else tuple(layout)


def _label(key: str, value: Any) -> str:
    if key == "ipc":
        return "full data" if _is_missing(value) else f"IPC {value}"
    if key == "test_dataset":
        return "in-domain" if _is_missing(value) else str(value)
    if key == "step":
        return "" if _is_missing(value) else f"step {value}"
    if key == "eval_step":
        return DASH if _is_missing(value) else f"experience {value}"
    return DASH if _is_missing(value) else str(value)


def _paper_rows(stage_rows: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    extra = []
    for row in stage_rows.to_dict("records"):
        for hit in paper_match(paper, row["method"], row["dataset"], row["ipc"], row["metric"]):
            extra.append({**row, "method": f"{row['method']} (paper: {hit['source']})",
                          "mean": float(hit["mean"]),
                          "std": float("nan") if _is_missing(hit["std"]) else float(hit["std"]),
                          "n": float("nan")})
    return pd.DataFrame(extra, columns=stage_rows.columns)


def accuracy_table(summary: pd.DataFrame, stage: str, rows: Layout | None = None,
                   columns: Layout | None = None, paper: pd.DataFrame | None = None,
                   metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Wide table of "mean ± std" strings for one stage: `rows` keys as leading columns, one column per
    `columns` combination; in-domain rows get the paper's numbers beside them when `paper` is given."""
    default_rows, default_cols = STAGE_LAYOUT.get(stage, STAGE_LAYOUT["in-domain"])
    row_keys = _as_keys(rows) if rows is not None else default_rows
    col_keys = _as_keys(columns) if columns is not None else default_cols
    metrics = tuple(metrics) if metrics is not None else STAGE_METRICS.get(stage, ("test_accuracy",))
    sel = summary[(summary["stage"] == stage) & summary["metric"].isin(metrics)]
    if stage == "continual":
        sel = sel[sel["eval_step"].isna()]
    if sel.empty:
        return pd.DataFrame(columns=list(row_keys))
    if stage == "ood":  # corrupted test sets get their own table (report.corruptions)
        sel = sel[[not is_corrupted(t) for t in sel["test_dataset"]]]
        if sel.empty:
            return pd.DataFrame(columns=list(row_keys))
    if rows is None:
        row_keys = with_lr_protocol(row_keys, sel)
    row_keys, per_cell, epochs_text = _epochs_layout(sel, row_keys, col_keys, split=rows is None)
    if paper is not None and stage == "in-domain":
        sel = pd.concat([sel, _paper_rows(sel, paper)], ignore_index=True)
    # Several groups can fall in one cell when the layout leaves a key out; keep them all visible.
    cells: dict[tuple[Any, ...], dict[tuple[Any, ...], list[tuple[str, int | None]]]] = {}
    col_set: set[tuple[Any, ...]] = set()
    for row in sel.to_dict("records"):
        rkey = tuple(None if _is_missing(row[k]) else row[k] for k in row_keys)
        ckey = tuple(None if _is_missing(row[k]) else row[k] for k in col_keys)
        col_set.add(ckey)
        n = None if _is_missing(row["n"]) or _is_missing(row["mean"]) else int(row["n"])
        text = format_cell(row["mean"], row["std"])
        if per_cell and not _is_missing(row.get("epochs")) and " (paper" not in str(row.get("method")):
            text += f" ({row['epochs']} ep)"
        cells.setdefault(rkey, {}).setdefault(ckey, []).append((text, n))
    counts = {n for by_col in cells.values() for parts in by_col.values() for _, n in parts if n is not None}
    one_n = len(counts) <= 1

    def row_sort(rkey: tuple[Any, ...]) -> tuple[Any, ...]:
        parts: list[Any] = []
        for k, v in zip(row_keys, rkey, strict=True):
            parts.append(method_rank(v) if k == "method" else _sort_key(v))
        if "method" in row_keys:  # paper rows right below their measured row
            m = rkey[row_keys.index("method")]
            base = str(m).split(" (paper")[0]
            key_wo = [p for k, p in zip(row_keys, parts, strict=True) if k != "method"]
            return (method_rank(base), *key_wo, " (paper" in str(m), str(m))
        return tuple(parts)

    col_order = sorted(col_set, key=lambda t: tuple(_sort_key(x) for x in t))
    col_names = [" · ".join(p for p in (_label(k, v) for k, v in zip(col_keys, c, strict=True)) if p)
                 for c in col_order]
    keys_out = [("IPC" if k == "ipc" else k) for k in row_keys]
    out_rows = []
    for rkey in sorted(cells, key=row_sort):
        out: dict[str, Any] = {("IPC" if k == "ipc" else k): (DASH if _is_missing(v) else v)
                               for k, v in zip(row_keys, rkey, strict=True)}
        ns = [n for parts in cells[rkey].values() for _, n in parts if n is not None]
        usual = max(set(ns), key=lambda n: (ns.count(n), n)) if ns else None  # commonest n (ties: larger)
        if not one_n:
            out["n"] = DASH if usual is None else usual
        for c, name in zip(col_order, col_names, strict=True):
            parts = cells[rkey].get(c, [])
            out[name] = "; ".join(text if one_n or n in (None, usual) else f"{text} (n={n})"
                                  for text, n in parts) or DASH
        out_rows.append(out)
    table = pd.DataFrame(out_rows, columns=keys_out + ([] if one_n else ["n"]) + col_names)
    table.attrs["lead"] = len(keys_out) + (0 if one_n else 1)
    table.attrs["n"] = next(iter(counts)) if one_n and counts else None
    table.attrs["epochs"] = epochs_text
    return table


def _epochs_of(sel: pd.DataFrame, keys: Sequence[str]) -> dict[tuple[Any, ...], set[Any]]:
    """{values of `keys`: the training epochs in those summary rows} (rows without epochs left out)."""
    seen: dict[tuple[Any, ...], set[Any]] = {}
    if "epochs" not in sel:
        return seen
    for row in sel.to_dict("records"):
        if not _is_missing(row.get("epochs")):
            key = tuple(None if _is_missing(row.get(k)) else row.get(k) for k in keys)
            seen.setdefault(key, set()).add(row["epochs"])
    return seen


def _epochs_layout(sel: pd.DataFrame, row_keys: tuple[str, ...], col_keys: tuple[str, ...],
                   split: bool = True) -> tuple[tuple[str, ...], bool, str]:
    """How a table shows training lengths: (row keys, whether cells say their epochs, caption note).

    One length: a note saying it. Lengths that differ only between rows: an `epochs` row key (each row
    one length). Lengths that differ across the columns of a row but never inside a cell (cross-arch trains
    other architectures for other epochs by design): no split, which would make a staircase of dashes;
    the note gives the epochs per column when they depend on the column alone, else each cell says them.
    Lengths mixed inside a cell: an `epochs` row key (with `split`; else each cell says them)."""
    every: set[Any] = set().union(*_epochs_of(sel, ()).values())
    if "epochs" in row_keys or not every:
        return row_keys, False, ""
    if len(every) == 1:
        return row_keys, False, f" All runs trained for {epochs_text(next(iter(every)))}."
    rows_vary = any(len(v) > 1 for v in _epochs_of(sel, row_keys).values())
    cells_vary = any(len(v) > 1 for v in _epochs_of(sel, (*row_keys, *col_keys)).values())
    if split and (cells_vary or not rows_vary):
        return (*row_keys, "epochs"), False, " epochs: training epochs of the row's runs."
    by_col = _epochs_of(sel, col_keys)
    if not cells_vary and all(len(v) == 1 for v in by_col.values()):
        words = [f"{' · '.join(_label(k, v) for k, v in zip(col_keys, c, strict=True))}: {next(iter(e))}"
                 for c, e in sorted(by_col.items(), key=lambda kv: tuple(_sort_key(x) for x in kv[0]))]
        return row_keys, False, f" Training epochs per {' · '.join(col_keys)}: {'; '.join(words)}."
    return row_keys, True, " (k ep): the cell's runs trained for k epochs."


def epochs_note(table: pd.DataFrame) -> str:
    """The training length note of a table from `accuracy_table`, to append to its caption ("" if none)."""
    note = table.attrs.get("epochs")
    return note if isinstance(note, str) else ""


def table_lead(table: pd.DataFrame, stage: str) -> int:
    """How many leading (label) columns a table from `accuracy_table` has: its row keys and `n` column."""
    lead = table.attrs.get("lead")
    if isinstance(lead, int):
        return lead
    return len(STAGE_LAYOUT.get(stage, STAGE_LAYOUT["in-domain"])[0]) + ("lr_protocol" in table.columns)


def n_note(table: pd.DataFrame, stage: str) -> str:
    """What n is for a table's cells, to append to its caption: the single n of every measured cell, or how
    to read the `n` column and the "(n=k)" marks when the cells differ; "" for an empty table."""
    unit = "class orders" if stage.startswith("continual") else "runs (seeds)"
    n = table.attrs.get("n")
    if isinstance(n, int):
        return f" n = {n} {unit} per cell." if n != 1 else " n = 1 (a single run per cell, so no std)."
    if "n" in table.columns:
        return (f" n: {unit} behind each row's cells; a cell over another number says so as (n=k); a cell "
                "without ± is a single run.")
    return ""


EXPERIENCE_CAPTION = ("Accuracy (%) on each experience's test classes after the last step (the final model's "
                      "row of the accuracy matrix), mean ± std over class orders: which experiences a final "
                      "average lost.")


def experience_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Continual: accuracy on each experience's classes after a run's last step, a column per experience."""
    sel = summary[(summary["stage"] == "continual") & (summary["metric"] == "step_accuracy")]
    rows = STAGE_LAYOUT["continual"][0]
    if sel.empty:
        return pd.DataFrame(columns=list(rows))
    run = pd.Series([tuple(r) for r in sel[list(rows)].itertuples(index=False)], index=sel.index)
    last = sel["step"].astype(float).groupby(run.map(str)).transform("max")
    final = sel[sel["step"].astype(float) == last].assign(stage="continual-experiences")
    return accuracy_table(final, "continual-experiences", rows=rows, columns=("eval_step",),
                          metrics=("step_accuracy",))


def experience_markdown(summary: pd.DataFrame) -> list[str]:
    """The per-experience table as Markdown lines under its own heading; none without step accuracies."""
    table = experience_table(summary)
    if table.empty:
        return []
    return ["### Accuracy per experience after the last step", "",
            EXPERIENCE_CAPTION + n_note(table, "continual-experiences") + epochs_note(table), "",
            to_markdown(table, table_lead(table, "continual"))]


# ----------------------------------------------------------------------------------------------- writers


def to_markdown(table: pd.DataFrame, lead: int = 1) -> str:
    """A GitHub-flavoured Markdown table: the first `lead` (label) columns left-aligned, the rest right."""
    def esc(x: Any) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    headers = [esc(c) for c in table.columns]
    body = [[esc(v) for v in row] for row in table.itertuples(index=False)]
    widths = [max([len(h), 3, *(len(r[i]) for r in body)]) for i, h in enumerate(headers)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"]
    lines.append("| " + " | ".join(":" + "-" * (w - 1) if i < lead else "-" * (w - 1) + ":"
                                   for i, w in enumerate(widths)) + " |")
    for r in body:
        lines.append("| " + " | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) + " |")
    return "\n".join(lines) + "\n"


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _latex_escape(x: Any) -> str:
    text = "".join(_LATEX_ESCAPES.get(ch, ch) for ch in str(x))
    return text.replace("±", r"$\pm$").replace(DASH, "--").replace("·", r"$\cdot$")


def to_latex(table: pd.DataFrame, caption: str | None = None, lead: int = 1) -> str:
    """A standalone LaTeX `tabular` (no booktabs needed) with escaped cells; `caption` goes in a comment."""
    lead = min(lead, len(table.columns))
    spec = "l" * lead + "r" * (len(table.columns) - lead)
    lines = [f"% {caption}"] if caption else []
    lines += [rf"\begin{{tabular}}{{{spec}}}", r"\hline",
              " & ".join(_latex_escape(c) for c in table.columns) + r" \\", r"\hline"]
    for row in table.itertuples(index=False):
        lines.append(" & ".join(_latex_escape(v) for v in row) + r" \\")
    lines += [r"\hline", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def stage_csv(summary: pd.DataFrame, stage: str, paper: pd.DataFrame | None = None) -> pd.DataFrame:
    """The numeric long-form rows of one stage (mean, std, n, and paper_* columns)."""
    return attach_paper(summary[summary["stage"] == stage].reset_index(drop=True), paper)


def write_stage_tables(summary: pd.DataFrame, stage: str, out: str | Path,
                       paper: pd.DataFrame | None = None) -> list[Path]:
    """Write `<stage>.md`, `<stage>.csv` and `<stage>.tex` into `out`; returns the written paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = accuracy_table(summary, stage, paper=paper)
    lead = table_lead(table, stage)
    caption = stage_caption(stage) + n_note(table, stage) + epochs_note(table)
    md, csv, tex = out / f"{stage}.md", out / f"{stage}.csv", out / f"{stage}.tex"
    notes = [*CONTINUAL_NOTES, ""] if stage == "continual" else []
    extra = experience_markdown(summary) if stage == "continual" else []
    md.write_text("\n".join([f"# {stage}", "", caption, "", *notes, to_markdown(table, lead), *extra]))
    stage_csv(summary, stage, paper).to_csv(csv, index=False)
    tex.write_text(to_latex(table, caption=f"{stage}: {caption}", lead=lead))
    return [md, csv, tex]


CONTINUAL_NOTES = (
    "Protocols (how a memory is used):",
    "- retrain: a fresh model trained on the memory alone after each step (the paper's protocol);",
    "- naive / lwf / ewc: that Avalanche strategy trained on each experience's data, with the memory "
    "replayed through a ReplayPlugin (the gdumb memory runs Avalanche's GDumb);",
    "- er_ace / der: Avalanche's ER-ACE / DER strategy with the memory as its buffer;",
    "- a `+reset-optimizer` suffix: the optimizer's state (SGD momentum) cleared at each experience; "
    "`+replay-batch-N`: N memory images replayed per mini-batch; without them, Avalanche's defaults "
    "(docs/continual.md).",
    "",
    "Memories: `herding` is ours (offline: herding on the features of a network trained on all classes); "
    "`av_herding` is Avalanche's herding buffer (stream: built from the experiences seen so far).",
)


def stage_caption(stage: str) -> str:
    """One sentence saying what a stage's table cells are."""
    captions = {
        "in-domain": "Test accuracy (%), mean ± sample std over seeds (no ± when a single run). Rows marked "
                     "'(paper: …)' are the published numbers, not ours.",
        "cross-arch": "Test accuracy (%) of networks of each architecture trained on the condensed set, "
                      "mean ± std over seeds.",
        "ood": "Test accuracy (%) on the in-domain test set and on each shifted test set, "
               "mean ± std over seeds.",
        "continual": "Average accuracy (%) on all classes seen after each step; at the last step average "
                     "incremental accuracy (mean of the per-step averages), backward transfer (mean over "
                     "earlier experiences of final minus just-learned accuracy, points) and forgetting "
                     "(points; retrain: mean over earlier experiences of just-learned minus final accuracy "
                     "from the same matrix, i.e. -BWT; strategy protocols: Avalanche's StreamForgetting, "
                     "which need not equal -BWT); mean ± std over class orders. "
                     f"memory_mode — {MEMORY_MODE_NOTE}.",
    }
    return captions.get(stage, "Mean ± sample std over seeds.")
