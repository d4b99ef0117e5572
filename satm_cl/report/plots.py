"""Report figures (seaborn, PNG at 120 dpi). Each function returns the written path, or None when its
data is absent, and takes the tidy frame from `tables.records_frame` (raw values, one row per seed)."""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator

from satm_cl.errors import SatmError
from satm_cl.report.tables import (
    epochs_text,
    is_corrupted,
    method_rank,
    paper_match,
    with_epochs,
    with_lr_protocol,
)

DPI = 120
# what puts two records at one place in a panel whatever their method: runs there trained for other
# numbers of epochs (satm at 30, a baseline at 10) are not comparable, so they get other panels
SAME_RUNS = ("dataset", "ipc", "arch", "test_dataset", "lr_protocol")
sns.set_theme(style="whitegrid", context="notebook")


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # panels below a figure title: it hangs from 98 % of the height and takes about 0.25 inch, so on a tall
    # figure a fixed fraction would leave the first row's titles under it
    top = 0.98 - 0.25 / fig.get_figheight() if fig.get_suptitle() else 1.0
    fig.tight_layout(rect=(0.0, 0.0, 1.0, top))
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def _palette(labels: Iterable[str]) -> dict[str, Any]:
    labels = sorted(set(labels), key=method_rank)
    colours = sns.color_palette("tab10" if len(labels) <= 10 else "husl", len(labels))
    return dict(zip(labels, colours, strict=True))


def _grid(n: int, ncols: int = 3, size: tuple[float, float] = (5.0, 4.0),
          sharey: bool = False) -> tuple[Any, list[Any]]:
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False,
                             sharey=sharey)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _legend_outside(ax: Any, title: str | None = None) -> None:
    """Put the axis legend (deduplicated by label) to the right of the plot, clear of the data."""
    handles, labels = ax.get_legend_handles_labels()
    uniq = dict(zip(labels, handles, strict=True))
    if uniq:
        ax.legend(uniq.values(), uniq.keys(), fontsize="small", title=title, loc="upper left",
                  bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def _shared_legend(fig: Any, axes: Sequence[Any], title: str | None = None) -> None:
    """One legend for a figure whose panels share a palette: a single visible panel keeps it beside
    itself; several give up theirs for one figure legend right of all panels, each label once, in method
    order."""
    shown = [ax for ax in axes if ax.get_visible()]
    if len(shown) == 1:
        _legend_outside(shown[0], title)
        return
    entries: dict[str, Any] = {}
    for ax in shown:
        handles, labels = ax.get_legend_handles_labels()
        for handle, label in zip(handles, labels, strict=True):
            entries.setdefault(label, handle)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    if entries:
        order = sorted(entries, key=method_rank)
        fig.legend([entries[k] for k in order], order, fontsize="small", title=title, loc="center left",
                   bbox_to_anchor=(1.0, 0.5), borderaxespad=0.0)


def _stage(frame: pd.DataFrame, stage: str, metrics: Sequence[str]) -> pd.DataFrame:
    sel = frame[(frame["stage"] == stage) & frame["metric"].isin(metrics) & frame["value"].notna()]
    return sel.copy()


def _group_title(keys: Sequence[str], values: Sequence[Any]) -> str:
    parts = []
    for k, v in zip(keys, values, strict=True):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        labels = {"ipc": f"IPC {v}", "lr_protocol": f"{v} LR", "steps": f"{v} steps",
                  "epochs": f"{v} epochs"}
        parts.append(labels.get(k, str(v)))
    return " · ".join(parts)


def _wrapped(title: str, width: int = 48) -> str:
    """A panel title broken into lines of at most `width` characters, so that long protocol labels (e.g.
    `naive+reset-optimizer+replay-batch-20`) do not run into the next panel's title."""
    return "\n".join(textwrap.fill(line, width) for line in title.split("\n"))


def _epochs_title(part: pd.DataFrame) -> str:
    """The training length of a panel's runs for its title: " · N epochs", or per architecture (or IPC)
    when they differ only by it (cross-arch trains other architectures for other epochs), "" if unknown."""
    known = part[[not (e is None or (isinstance(e, float) and math.isnan(e))) for e in part["epochs"]]]
    epochs = set(known["epochs"])
    if len(epochs) == 1:
        return f" · {next(iter(epochs))} epochs"
    for key in ("arch", "ipc", "test_dataset"):
        per = known.groupby(known[key].astype(str))["epochs"].agg(lambda e: set(e))
        if len(per) and all(len(v) == 1 for v in per):
            return f" · epochs by {key}: " + ", ".join(f"{k} {next(iter(v))}" for k, v in per.items())
    return f" · {'/'.join(str(e) for e in sorted(epochs))} epochs" if epochs else ""


def _panel_title(keys: Sequence[str], key: Sequence[Any], part: pd.DataFrame) -> str:
    """A panel's keys in words, with its training length unless the panels are split by it already."""
    return _group_title(keys, key) + ("" if "epochs" in keys else _epochs_title(part))


def _groups(sel: pd.DataFrame, keys: Sequence[str]) -> list[tuple[tuple[Any, ...], pd.DataFrame]]:
    """Split on `keys` treating None as its own group (pandas groupby would drop it)."""
    tagged = sel.assign(_g=[tuple(r) for r in sel[list(keys)].itertuples(index=False)])
    out = [(g, part.drop(columns="_g")) for g, part in tagged.groupby("_g", sort=False)]
    return sorted(out, key=lambda t: tuple(str(x) for x in t[0]))


def plot_accuracy_vs_ipc(frame: pd.DataFrame, path: str | Path,
                         paper: pd.DataFrame | None = None) -> Path | None:
    """In-domain test accuracy vs images per class, one panel per dataset, error bars = std over seeds;
    the paper's numbers (if given) are drawn as crosses, the whole-data baseline as a dashed line."""
    sel = _stage(frame, "in-domain", ["test_accuracy"])
    if sel.empty:
        return None
    colours = _palette(sel["method"].astype(str))
    keys = with_epochs(with_lr_protocol(("dataset",), sel), sel, within=SAME_RUNS)
    groups = _groups(sel, keys)
    fig, axes = _grid(len(groups), size=(5.5, 4.2))
    for ax, (key, part) in zip(axes, groups, strict=True):
        dataset = key[0]
        full = part[part["method"] == "full"]
        curve = part[(part["method"] != "full") & part["ipc"].notna()].copy()
        curve["ipc"] = curve["ipc"].astype(float)
        if not curve.empty:
            sns.lineplot(data=curve, x="ipc", y="value", hue="method", palette=colours, marker="o",
                         errorbar="sd", err_style="bars", err_kws={"capsize": 3},
                         hue_order=sorted(curve["method"].unique(), key=method_rank), ax=ax)
            ax.set_xscale("log")
            ticks = sorted(curve["ipc"].unique())
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
            ax.minorticks_off()
        if not full.empty:
            ax.axhline(full["value"].mean(), ls="--", color="grey", label="full data")
        if paper is not None and not curve.empty:
            for method in curve["method"].unique():
                for ipc in curve[curve["method"] == method]["ipc"].unique():
                    for hit in paper_match(paper, method, dataset, int(ipc)):
                        ax.scatter([ipc], [hit["mean"]], marker="x", s=60, color=colours[method],
                                   label=f"{method} (paper)", zorder=5)
        ax.set_title(f"{_panel_title(keys, key, part)}: accuracy vs images per class")
        ax.set_xlabel("images per class (IPC)")
        ax.set_ylabel("test accuracy (%)")
    _shared_legend(fig, axes, "method")
    return _save(fig, path)


def plot_cross_arch(frame: pd.DataFrame, path: str | Path) -> Path | None:
    """Cross-architecture grouped bars: architecture on x, one bar per method, error bars = std."""
    sel = _stage(frame, "cross-arch", ["test_accuracy"])
    if sel.empty:
        return None
    colours = _palette(sel["method"].astype(str))
    keys = with_epochs(with_lr_protocol(("dataset", "ipc"), sel), sel, within=SAME_RUNS)
    groups = _groups(sel, keys)
    n_arch = sel["arch"].nunique()
    fig, axes = _grid(len(groups), ncols=2, size=(max(5.0, 1.4 * n_arch + 2), 4.2))
    for ax, (key, part) in zip(axes, groups, strict=True):
        sns.barplot(data=part.assign(arch=part["arch"].astype(str)), x="arch", y="value", hue="method",
                    hue_order=sorted(part["method"].unique(), key=method_rank), palette=colours,
                    errorbar="sd", capsize=0.1, ax=ax)
        ax.set_title(f"Cross-architecture: {_panel_title(keys, key, part)}")
        ax.set_xlabel("evaluation architecture")
        ax.set_ylabel("test accuracy (%)")
    _shared_legend(fig, axes, "method")
    return _save(fig, path)


def plot_ood(frame: pd.DataFrame, path: str | Path) -> Path | None:
    """In-domain vs shifted test accuracy: bars grouped by method, hue = test data, error bars = std."""
    sel = _stage(frame, "ood", ["test_accuracy"])
    corrupted = [is_corrupted(t) for t in sel["test_dataset"]]
    sel = sel[[not c for c in corrupted]]  # corrupted test sets have their own plot (report.corruptions)
    if sel.empty or (any(corrupted) and sel["test_dataset"].isna().all()):
        return None
    sel["test data"] = [("in-domain" if t is None else str(t)) for t in sel["test_dataset"]]
    keys = with_epochs(with_lr_protocol(("dataset", "ipc"), sel), sel, within=SAME_RUNS)
    groups = _groups(sel, keys)
    n_methods = sel["method"].nunique()
    fig, axes = _grid(len(groups), ncols=2, size=(max(5.0, 1.5 * n_methods + 2), 4.2))
    for ax, (key, part) in zip(axes, groups, strict=True):
        tests = sorted(part["test data"].unique(), key=lambda t: (t != "in-domain", t))
        sns.barplot(data=part, x="method", y="value", hue="test data", hue_order=tests,
                    order=sorted(part["method"].unique(), key=method_rank), errorbar="sd", capsize=0.1,
                    palette="Set2", ax=ax)
        ax.set_title(f"Out-of-domain: {_panel_title(keys, key, part)}")
        ax.set_xlabel("method")
        ax.set_ylabel("test accuracy (%)")
        _legend_outside(ax, "test data")
    return _save(fig, path)


def _classes_seen(part: pd.DataFrame) -> list[float]:
    out = []
    for step, config in zip(part["step"], part["config"], strict=True):
        per = config.get("classes_per_step") if isinstance(config, dict) else None
        out.append(float(step) * float(per) if per else float(step))
    return out


def _memory_labels(sel: pd.DataFrame) -> list[str]:
    """"method (offline)" / "method (stream)" for continual rows that say their memory mode."""
    out = []
    for m, mode in zip(sel["method"], sel["memory_mode"], strict=True):
        out.append(f"{m} ({mode})" if isinstance(mode, str) else str(m))
    return out


def _continual_panels(sel: pd.DataFrame, keys: list[str]) -> tuple[list[str], str]:
    """Panel keys and a figure title note for continual figures: every panel shares its y axis, so say
    so; the training epochs go in the title when they are one number, else they split the panels."""
    epochs = {e for e in sel["epochs"] if e is not None and not (isinstance(e, float) and math.isnan(e))}
    if len(epochs) > 1:
        return [*keys, "epochs"], "y axis shared by all panels"
    return keys, "y axis shared by all panels" + (f"; {epochs_text(next(iter(epochs)))} of training per step"
                                                  if epochs else "")


def _continual_curves(frame: pd.DataFrame) -> pd.DataFrame:
    """avg_accuracy rows per step with x = classes seen and a `memory` label (method and memory mode)."""
    sel = _stage(frame, "continual", ["avg_accuracy"])
    sel = sel[sel["step"].notna() & sel["eval_step"].isna()].copy()
    if sel.empty:
        return sel
    sel["x"] = _classes_seen(sel)
    sel["memory"] = _memory_labels(sel)
    return sel


def _curve_panel(ax: Any, part: pd.DataFrame, colours: dict[str, Any], has_per: bool, title: str) -> None:
    sns.lineplot(data=part, x="x", y="value", hue="memory", palette=colours, marker="o",
                 hue_order=sorted(part["memory"].unique(), key=method_rank),
                 errorbar="sd", err_style="band", ax=ax)
    ticks = sorted(part["x"].unique())
    if len(ticks) <= 12:
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_title(_wrapped(title))
    ax.set_xlabel("classes seen" if has_per else "experiences seen")
    ax.set_ylabel("average accuracy (%)")


def plot_continual_accuracy(frame: pd.DataFrame, path: str | Path) -> Path | None:
    """Continual average accuracy vs classes seen (step × classes_per_step, else step) per memory (labelled
    offline/stream), mean ± std band over seeds / class orders, one panel per dataset, protocol, IPC and
    number of steps (and epochs when they differ), all on one y axis (panels compare at a glance) and one
    palette, named once in a legend for the whole figure."""
    sel = _continual_curves(frame)
    if sel.empty:
        return None
    has_per = any(isinstance(c, dict) and c.get("classes_per_step") for c in sel["config"])
    colours = _palette(sel["memory"])
    keys, note = _continual_panels(sel, ["dataset", "protocol", "ipc", "steps"])
    groups = _groups(sel, keys)
    fig, axes = _grid(len(groups), size=(5.5, 4.2), sharey=True)
    for ax, (key, part) in zip(axes, groups, strict=True):
        _curve_panel(ax, part, colours, has_per, _group_title(keys, key))
    _shared_legend(fig, axes, "memory")
    fig.suptitle(f"Average accuracy vs classes seen ({note})")
    return _save(fig, path)


def plot_offline_vs_stream(frame: pd.DataFrame, path: str | Path) -> Path | None:
    """Offline memories (condensed or selected with all classes visible) beside stream memories (built from
    the experiences seen so far): average accuracy vs classes seen, one row per dataset, protocol, IPC and
    number of steps, one y axis for the whole figure. None unless both modes are present."""
    sel = _continual_curves(frame)
    if sel.empty or set(sel["memory_mode"].dropna()) < {"offline", "stream"}:
        return None
    has_per = any(isinstance(c, dict) and c.get("classes_per_step") for c in sel["config"])
    colours = _palette(sel["memory"])
    keys, note = _continual_panels(sel, ["dataset", "protocol", "ipc", "steps"])
    groups = _groups(sel, keys)
    fig, axes = plt.subplots(len(groups), 2, figsize=(12.0, 4.2 * len(groups)), squeeze=False, sharey=True)
    fig.suptitle(f"Offline vs stream memories ({note})")
    titles = {"offline": "offline: condensed with all classes visible",
              "stream": "stream: built from the experiences seen so far"}
    for row, (key, part) in zip(axes, groups, strict=True):
        for ax, mode in zip(row, ("offline", "stream"), strict=True):
            sub = part[part["memory_mode"] == mode]
            if sub.empty:
                ax.set_visible(False)
                continue
            _curve_panel(ax, sub, colours, has_per, f"{_group_title(keys, key)}\n{titles[mode]}")
    _shared_legend(fig, list(axes.ravel()), "memory")
    return _save(fig, path)


def plot_memory_size_sweep(frame: pd.DataFrame, path: str | Path) -> Path | None:
    """Final average accuracy (last step) vs memory size (IPC) per memory, error bars = std over class orders,
    one panel per dataset, protocol and number of steps that ran at two or more IPCs (None when none did),
    all on one y axis."""
    sel = _continual_curves(frame)
    if sel.empty:
        return None
    last = sel.groupby(["dataset", "protocol", "steps", "ipc"], dropna=False)["step"].transform("max")
    sel = sel[(sel["step"] == last) & sel["ipc"].notna()].copy()
    sel["ipc"] = sel["ipc"].astype(float)
    colours = _palette(sel["memory"])
    keys, note = _continual_panels(sel, ["dataset", "protocol", "steps"])
    groups = [(k, part) for k, part in _groups(sel, keys) if part["ipc"].nunique() > 1]  # sweeps only
    if not groups:
        return None
    fig, axes = _grid(len(groups), size=(5.5, 4.2), sharey=True)
    fig.suptitle(f"Final average accuracy vs memory size ({note})")
    for ax, (key, part) in zip(axes, groups, strict=True):
        sns.lineplot(data=part, x="ipc", y="value", hue="memory", palette=colours, marker="o",
                     hue_order=sorted(part["memory"].unique(), key=method_rank),
                     errorbar="sd", err_style="bars", err_kws={"capsize": 3}, ax=ax)
        ax.set_xscale("log")
        ticks = sorted(part["ipc"].unique())
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
        ax.set_title(_wrapped(_group_title(keys, key)))  # the figure's title names the axes
        ax.set_xlabel("memory size (images per class)")
        ax.set_ylabel("final average accuracy (%)")
    _shared_legend(fig, axes, "memory")
    return _save(fig, path)


def plot_continual_matrices(frame: pd.DataFrame, path: str | Path) -> Path | None:
    """Accuracy matrices (row: experiences trained, column: experience evaluated; both 1-based in records),
    mean over seeds, one heatmap per memory (with its mode), protocol, dataset, IPC and number of steps."""
    sel = _stage(frame, "continual", ["step_accuracy"])
    sel = sel[sel["step"].notna() & sel["eval_step"].notna()]
    if sel.empty:
        return None
    keys = ["method", "memory_mode", "protocol", "dataset", "ipc", "steps"]
    groups = sorted(_groups(sel, keys), key=lambda t: (method_rank(t[0][0]), str(t[0][1:])))
    size = max(sel["step"].nunique(), sel["eval_step"].nunique())
    cell = 0.45 if size > 8 else 0.7
    fig, axes = _grid(len(groups), ncols=3, size=(max(4.5, cell * size + 2.0), max(3.8, cell * size + 1.2)))
    for ax, (key, part) in zip(axes, groups, strict=True):
        part = part.assign(step=part["step"].astype(int), eval_step=part["eval_step"].astype(int))
        mat = part.pivot_table(index="step", columns="eval_step", values="value", aggfunc="mean")
        sns.heatmap(mat, vmin=0, vmax=100, cmap="viridis", annot=size <= 12, fmt=".0f", square=True,
                    cbar_kws={"label": "accuracy (%)", "shrink": 0.8}, annot_kws={"fontsize": 8}, ax=ax)
        ax.grid(False)
        ax.set_title(_wrapped(_group_title(keys, key)))
        ax.set_xlabel("experience evaluated")
        ax.set_ylabel("experiences trained")
    return _save(fig, path)


# ----------------------------------------------------------------------------------------------- artifacts


def read_condensation_log(artifact: str | Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """An artifact's synthetic.json meta and its log.jsonl as a DataFrame (empty when there is no log)."""
    artifact = Path(artifact)
    meta_path, log_path = artifact / "synthetic.json", artifact / "log.jsonl"
    if not artifact.is_dir():
        raise SatmError(f"artifact directory not found: {artifact}")
    meta: dict[str, Any] = {}
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            raise SatmError(f"{meta_path}: not a JSON object") from None
        if not isinstance(meta, dict):
            raise SatmError(f"{meta_path}: not a JSON object")
    rows = []
    if log_path.is_file():
        try:
            text = log_path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise SatmError(f"cannot read {log_path}: {exc}") from None
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise SatmError(f"{log_path}:{lineno}: not a JSON log line") from None
            if not isinstance(row, dict) or "iteration" not in row:
                raise SatmError(f"{log_path}:{lineno}: log line lacks iteration")
            rows.append(row)
    return meta, pd.DataFrame(rows)


def artifact_label(meta: dict[str, Any], artifact: str | Path) -> str:
    """"method · dataset · IPC n" from an artifact's meta, falling back to the directory name."""
    parts = [str(meta[k]) for k in ("method", "dataset") if meta.get(k) is not None]
    if meta.get("ipc") is not None:
        parts.append(f"IPC {meta['ipc']}")
    return " · ".join(parts) if parts else Path(artifact).name


def plot_condensation_curves(artifacts: Sequence[str | Path], path: str | Path,
                             window: int | None = None) -> Path | None:
    """Outer-loop loss and hypergradient norm (and validation accuracy when logged) vs iteration, one line
    per artifact labelled by method; faint raw values under a rolling mean (`window`, default ~len/25)."""
    logs = []
    for art in artifacts:
        meta, log = read_condensation_log(art)
        if not log.empty:
            logs.append((artifact_label(meta, art), Path(art).name, log.sort_values("iteration")))
    if not logs:
        return None
    labels = [lab for lab, _, _ in logs]
    logs = [((lab if labels.count(lab) == 1 else f"{lab} ({name})"), name, log) for lab, name, log in logs]
    panels = [("loss", "trajectory-matching loss"), ("grad_norm", "hypergradient norm")]
    if any("val_accuracy" in log.columns for _, _, log in logs):
        panels.append(("val_accuracy", "validation accuracy (%)"))
    panels = [(c, y) for c, y in panels if any(c in log.columns for _, _, log in logs)]
    if not panels:
        return None
    colours = dict(zip([lab for lab, _, _ in logs], sns.color_palette("tab10", len(logs)), strict=True))
    fig, axes = _grid(len(panels), ncols=len(panels), size=(5.5, 4.2))
    for ax, (col, ylabel) in zip(axes, panels, strict=True):
        positive = True
        for lab, _, log in logs:
            if col not in log.columns:
                continue
            data = log[["iteration", col]].dropna()
            if data.empty:
                continue
            positive &= bool((data[col] > 0).all())
            w = window or max(1, len(data) // 25)
            if col == "val_accuracy":
                ax.plot(data["iteration"], data[col], marker="o", color=colours[lab], label=lab)
                continue
            ax.plot(data["iteration"], data[col], color=colours[lab], alpha=0.25, lw=0.8)
            smooth = data[col].rolling(w, min_periods=1, center=True).mean()
            ax.plot(data["iteration"], smooth, color=colours[lab], lw=1.8, label=lab)
        if col != "val_accuracy" and positive:
            lo, hi = ax.get_ylim()
            if lo > 0 and hi / lo > 20:
                ax.set_yscale("log")
        ax.set_title(f"{ylabel} during condensation")
        ax.set_xlabel("outer iteration")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no iteration 2.5
        ax.set_ylabel(ylabel)
        ax.legend(fontsize="small")
    return _save(fig, path)


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def plot_image_grid(pixels: Any, labels: Any, class_names: Sequence[str], path: str | Path,
                    max_per_class: int = 10, title: str | None = None) -> Path | None:
    """Synthetic images as a grid: one row per class (labelled), up to `max_per_class` columns; pixels are
    [N, C, H, W] in [0, 1], greyscale when C == 1. Over 20 classes, class rows wrap into labelled blocks."""
    px, lab = _to_numpy(pixels).astype(np.float32), _to_numpy(labels).astype(np.int64).reshape(-1)
    if px.size == 0 or lab.size == 0:
        return None
    if px.ndim != 4 or px.shape[0] != lab.shape[0]:
        raise SatmError(f"image grid needs pixels [N,C,H,W] and N labels, got {px.shape} and {lab.shape}")
    px = np.clip(px, 0.0, 1.0)
    _, c, h, w = px.shape
    classes = sorted(set(lab.tolist()))
    names = [str(class_names[k]) if 0 <= k < len(class_names) else str(k) for k in classes]
    per = min(max_per_class, max(int((lab == k).sum()) for k in classes))
    if per == 1 and len(classes) <= 20:  # one image per class: a labelled row, not a one-column strip
        return _image_row(px, lab, classes, names, path, title)
    # Blocks of `per` images per class; `across` blocks side by side so the mosaic stays roughly square.
    across = 1 if len(classes) <= 20 else max(1, round(math.sqrt(len(classes) / per)))
    down = math.ceil(len(classes) / across)
    pad = max(1, h // 16)
    label_h = 0 if across == 1 else max(6, h // 3)
    cell_h, block_w = label_h + h + pad, per * (w + pad) + (3 * pad if across > 1 else 0)
    mosaic = np.ones((down * cell_h - pad, across * block_w - pad, 3), dtype=np.float32)
    for n, k in enumerate(classes):
        top, left = (n // across) * cell_h + label_h, (n % across) * block_w
        for j, i in enumerate(np.flatnonzero(lab == k)[:per]):
            img = px[i].transpose(1, 2, 0)
            img = np.repeat(img[..., :1], 3, axis=2) if c == 1 else img[..., :3]
            mosaic[top: top + h, left + j * (w + pad): left + j * (w + pad) + w] = img
    fig_w = min(18.0, max(4.0, 0.75 * per * across + 2.0))
    fig_h = min(30.0, max(2.0, fig_w * mosaic.shape[0] / mosaic.shape[1] * 0.9 + 0.8))
    fig, ax = plt.subplots(figsize=(fig_w, fig_h))
    ax.imshow(mosaic, interpolation="nearest")
    ax.grid(False)
    if across == 1:
        ax.set_yticks([r * cell_h + h / 2 for r in range(len(classes))], names, fontsize=9)
        xs = [j * (w + pad) + w / 2 for j in range(per)]
        ax.set_xticks(xs, [str(j + 1) for j in range(per)], fontsize=8)
        ax.set_xlabel("image per class")
    else:
        ax.set_xticks([])
        ax.set_yticks([])
        size = max(5.0, min(9.0, 120.0 / max(across * per, down)))
        for n, name in enumerate(names):
            ax.text((n % across) * block_w, (n // across) * cell_h + label_h - 1, name, fontsize=size,
                    va="bottom", ha="left", clip_on=True)
    ax.set_title(title or "Synthetic images (rows = classes)")
    for spine in ax.spines.values():
        spine.set_visible(False)
    return _save(fig, path)


def _image_row(px: np.ndarray, lab: np.ndarray, classes: list[int], names: list[str], path: str | Path,
               title: str | None) -> Path | None:
    """One image per class, side by side, each labelled with its class below."""
    _, c, h, w = px.shape
    pad = max(1, w // 16)
    mosaic = np.ones((h, len(classes) * (w + pad) - pad, 3), dtype=np.float32)
    for n, k in enumerate(classes):
        img = px[int(np.flatnonzero(lab == k)[0])].transpose(1, 2, 0)
        img = np.repeat(img[..., :1], 3, axis=2) if c == 1 else img[..., :3]
        mosaic[:, n * (w + pad): n * (w + pad) + w] = img
    fig, ax = plt.subplots(figsize=(min(18.0, max(4.0, 0.9 * len(classes) + 1.0)), 2.4))
    ax.imshow(mosaic, interpolation="nearest")
    ax.grid(False)
    ax.set_yticks([])
    long = max(len(n) for n in names) > 6
    ax.set_xticks([n * (w + pad) + w / 2 for n in range(len(classes))], names, fontsize=8,
                  rotation=45 if long else 0, ha="right" if long else "center")
    ax.set_title(title or "Synthetic images (one per class)")
    for spine in ax.spines.values():
        spine.set_visible(False)
    return _save(fig, path)


def plot_bench(rows: Sequence[dict[str, Any]], path: str | Path) -> Path | None:
    """`satm-cl bench` results: peak memory and seconds per outer iteration vs syn_steps, per variant."""
    if not rows:
        return None
    frame = pd.DataFrame(list(rows))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    panels = ((axes[0], "peak_mem_mb", "peak memory (MB)"), (axes[1], "seconds_per_iter", "s / iteration"))
    for ax, col, label in panels:
        sns.lineplot(frame, x="syn_steps", y=col, hue="variant", marker="o", ax=ax)
        ax.set_xlabel("inner steps N (syn_steps)")
        ax.set_ylabel(label)
        ax.set_xticks(sorted(frame["syn_steps"].unique()))
    axes[0].set_title("peak memory per outer iteration")
    axes[1].set_title("time per outer iteration")
    return _save(fig, path)
