"""The reporter: records files (and condensation artifacts) in, tables + plots + a README out.

`build_report` reads and checks every input before it writes anything, so bad input leaves `out` untouched.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from satm_cl.errors import SatmError
from satm_cl.io import check_out_dir, make_out_dir
from satm_cl.records import read_records
from satm_cl.report.checks import unlearned_experiences
from satm_cl.report.corruptions import corruption_section
from satm_cl.report.paired import paired_markdown, paired_table
from satm_cl.report.plots import (
    artifact_label,
    plot_accuracy_vs_ipc,
    plot_condensation_curves,
    plot_continual_accuracy,
    plot_continual_matrices,
    plot_cross_arch,
    plot_image_grid,
    plot_memory_size_sweep,
    plot_offline_vs_stream,
    plot_ood,
    read_condensation_log,
)
from satm_cl.report.tables import (
    CONTINUAL_NOTES,
    DASH,
    GROUP_KEYS,
    STAGES,
    _group_value,
    accuracy_table,
    attach_paper,
    epochs_note,
    experience_markdown,
    group_key,
    load_paper_numbers,
    n_note,
    records_frame,
    stage_caption,
    summarise,
    table_lead,
    to_markdown,
    with_continual_keys,
    write_stage_tables,
)

__all__ = [
    "accuracy_table",
    "build_report",
    "load_paper_numbers",
    "paired_table",
    "plot_accuracy_vs_ipc",
    "plot_condensation_curves",
    "plot_continual_accuracy",
    "plot_continual_matrices",
    "plot_cross_arch",
    "plot_image_grid",
    "plot_memory_size_sweep",
    "plot_offline_vs_stream",
    "plot_ood",
    "records_frame",
    "summarise",
    "to_markdown",
]

REPORT_TITLE = "# SATM benchmark report"
# Which plots belong to which stage: (file stem, caption, function of (frame, path, paper)).
_STAGE_PLOTS: dict[str, list[tuple[str, str, Any]]] = {
    "in-domain": [("in-domain_accuracy_vs_ipc", "Test accuracy vs images per class (crosses: paper)",
                   lambda f, p, paper: plot_accuracy_vs_ipc(f, p, paper=paper))],
    "cross-arch": [("cross-arch_bars", "Accuracy per evaluation architecture",
                    lambda f, p, paper: plot_cross_arch(f, p))],
    "ood": [("ood_bars", "In-domain vs shifted test accuracy", lambda f, p, paper: plot_ood(f, p))],
    "continual": [("continual_avg_accuracy", "Average accuracy vs classes seen",
                   lambda f, p, paper: plot_continual_accuracy(f, p)),
                  ("continual_offline_vs_stream", "Offline memories (condensed with all classes visible) "
                   "beside stream memories (built from the experiences seen so far)",
                   lambda f, p, paper: plot_offline_vs_stream(f, p)),
                  ("continual_memory_size", "Final average accuracy vs memory size (IPC)",
                   lambda f, p, paper: plot_memory_size_sweep(f, p)),
                  ("continual_matrices", "Accuracy matrices (mean over seeds)",
                   lambda f, p, paper: plot_continual_matrices(f, p))],
}


def _load_images(artifact: Path) -> tuple[Any, Any, list[str], dict[str, Any]] | None:
    """(pixels, labels, class_names, meta) via satm_cl.synthetic, or None when that module is unavailable."""
    try:
        from satm_cl.synthetic import load_synthetic
    except ImportError:
        return None
    try:
        syn = load_synthetic(artifact)
    except SatmError:
        raise
    except Exception as exc:  # any loader failure is the user's artifact, reported in one line
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SatmError(f"cannot load synthetic set {artifact}: {first}") from None
    meta = dict(getattr(syn, "meta", {}) or {})
    return syn.pixels(), syn.labels, list(meta.get("class_names", [])), meta


def _rel(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path, start)).as_posix()


def _identity(rec: dict[str, Any]) -> dict[str, Any]:
    """A record without its value; a set known by its fingerprint is the same set wherever its directory was
    (the same artifact evaluated from two paths is one measurement, not two runs)."""
    ident = {k: v for k, v in rec.items() if k != "value"}
    config = ident.get("config")
    if isinstance(config, dict) and config.get("set_fingerprint") is not None:
        ident["config"] = {k: v for k, v in config.items() if k != "artifact"}
    return ident


# The keys of a table row: a summary group without the metric and step a column of the row stands for.
_ROW_KEYS = tuple(k for k in GROUP_KEYS if k not in ("metric", "step", "eval_step"))


def _row_key(rec: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(_group_value(rec, k) for k in _ROW_KEYS)


def _row_label(key: tuple[Any, ...]) -> str:
    """A table row's keys in words ("continual · satm · digits · IPC 10 · … · 5 steps")."""
    words = {"ipc": "IPC {}", "steps": "{} steps", "lr_protocol": "{} LR", "epochs": "{} epochs"}
    return " · ".join(words.get(k, "{}").format(v) for k, v in zip(_ROW_KEYS, key, strict=True)
                      if v is not None)


def _set_name(rec: dict[str, Any]) -> str | None:
    """A record's synthetic set as "<fingerprint[:8]> (<artifact>)", None when the record names none."""
    config = rec.get("config")
    if not isinstance(config, dict) or config.get("set_fingerprint") is None:
        return None
    artifact = config.get("artifact")
    return str(config["set_fingerprint"])[:8] + (f" ({artifact})" if artifact else "")


def _flat(config: Any, prefix: str = "") -> dict[str, str]:
    """A nested config as {"a.b": json value}, to say which settings two measurements differ in."""
    if not isinstance(config, dict):
        return {prefix.rstrip("."): json.dumps(config, sort_keys=True)} if prefix else {}
    out: dict[str, str] = {}
    for k, v in config.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": json.dumps(v)})
    return out


def _repeated_seeds(records: Sequence[dict[str, Any]], sources: Sequence[Path]) -> list[str]:
    """One line per table row where a seed (a class order, for continual) was measured more than once with
    other values: which seeds, from which files and sets, and the config keys the measurements differ in.
    The summary counts such a seed once (the mean of its measurements); these lines say it happened."""
    by_seed: dict[tuple[Any, ...], list[int]] = {}
    for i, rec in enumerate(records):
        if rec.get("seed") is not None and rec.get("value") is not None:
            by_seed.setdefault((*group_key(rec), rec["seed"]), []).append(i)
    rows: dict[tuple[Any, ...], tuple[set[Any], set[int], set[str]]] = {}
    for key, idx in by_seed.items():
        if len({float(records[i]["value"]) for i in idx}) > 1:
            seeds, where, differ = rows.setdefault(_row_key(records[idx[0]]), (set(), set(), set()))
            seeds.add(key[-1])
            where.update(idx)
            flats = [_flat(records[i].get("config")) for i in idx]  # what this seed's measurements differ in
            differ.update(k for k in set().union(*flats) if len({f.get(k) for f in flats}) > 1)
    lines = []
    for row, (seeds, where, differ) in sorted(rows.items(), key=lambda kv: str(kv[0])):
        files = sorted({str(sources[i]) for i in where})
        sets = sorted({name for i in where if (name := _set_name(records[i])) is not None})
        unit = "class order" if row[0] == "continual" else "seed"
        said = [f"{unit}{'s' if len(seeds) > 1 else ''} {', '.join(map(str, sorted(seeds, key=str)))} "
                f"measured more than once with other values, in {', '.join(files)}"]
        if sets:
            said.append(f"sets {', '.join(sets)}")
        if differ:
            said.append(f"configs differ in {', '.join(sorted(differ))}")
        lines.append(f"{_row_label(row)}: {'; '.join(said)}")
    return lines


def _pooled_sets(records: Sequence[dict[str, Any]]) -> list[str]:
    """README lines naming every table row that pools runs of several synthetic sets (by fingerprint): the
    condensation seeds of a study, or sets made with other settings, which the records cannot tell apart."""
    sets: dict[tuple[Any, ...], dict[str, set[str]]] = {}
    for rec in records:
        config = rec.get("config")
        if not isinstance(config, dict) or config.get("set_fingerprint") is None:
            continue
        # the table's row keys: other protocols, training lengths or test sets are other rows already
        paths = sets.setdefault(_row_key(rec), {}).setdefault(str(config["set_fingerprint"]), set())
        paths.add(str(config.get("artifact") or f"{rec.get('method')} baseline"))
    pooled = {k: v for k, v in sets.items() if len(v) > 1}
    if not pooled:
        return []
    lines = ["Rows pooling the runs of several synthetic sets (their mean ± std is over all those runs, a "
             "seed run on more than one set counting once): the condensation seeds of one setting, or sets "
             "made with other settings, which records cannot tell apart; check they are what you meant.",
             ""]
    for key, by_set in sorted(pooled.items(), key=lambda kv: str(kv[0])):
        where = "; ".join(f"{fp[:8]}: {', '.join(sorted(paths))}" for fp, paths in sorted(by_set.items()))
        lines.append(f"- {_row_label(key)}: {len(by_set)} sets ({where})")
    return [*lines, ""]


def _settings(meta: dict[str, Any]) -> str:
    """The condensation settings a reader needs beside a set's numbers (from its synthetic.json; what the
    artifact does not record is left out)."""
    cfg: dict[str, Any] = meta["config"] if isinstance(meta.get("config"), dict) else {}
    expert: dict[str, Any] = cfg["expert"] if isinstance(cfg.get("expert"), dict) else {}
    parts = []
    if cfg.get("iterations") is not None:
        parts.append(f"{cfg['iterations']} iterations")
    if cfg.get("syn_steps") is not None:
        tuh = "" if cfg.get("truncate") is None else f" (TUH {cfg['truncate']})"
        parts.append(f"N {cfg['syn_steps']}{tuh}")
    if expert.get("num_experts") is not None:
        parts.append(f"{expert['num_experts']} experts × {expert.get('epochs')} epochs")
    if cfg.get("minimizer") is not None:
        rho = "" if cfg["minimizer"] == "none" else f" ρ {cfg.get('rho')}"
        parts.append(f"minimizer {cfg['minimizer']}{rho}")
    if meta.get("seed") is not None:
        parts.append(f"seed {meta['seed']}")
    selection = meta.get("selection")
    if isinstance(selection, dict) and selection.get("rule"):
        parts.append(f"kept: {selection['rule']}")
    return ", ".join(parts) or "no settings recorded"


def _merge_records(record_paths: Sequence[Path]) -> tuple[list[dict[str, Any]], list[Path], int]:
    """Every record of the files, a record present in several files (a file passed twice, or a run copied
    into two outputs) once: counted twice it would pass for another seed or class order. The same run with
    different values in two files is a SatmError (which one is right is for the user to say). Returns the
    records, the file each came from and how many were dropped."""
    records: list[dict[str, Any]] = []
    sources: list[Path] = []
    first: dict[str, tuple[Any, Path]] = {}
    dropped = 0
    for path in record_paths:
        recs = read_records(path)
        if not recs:
            raise SatmError(f"no records in {path}")
        for rec in recs:
            ident = json.dumps(_identity(rec), sort_keys=True)
            if ident not in first:
                first[ident] = (rec.get("value"), Path(path))
                records.append(rec)
                sources.append(Path(path))
                continue
            value, where = first[ident]
            if value != rec.get("value"):
                run = f"{rec.get('method')} {rec.get('stage')} {rec.get('metric')} seed {rec.get('seed')}"
                raise SatmError(f"{where} and {path} both hold {run} with other values ({value} vs "
                                f"{rec.get('value')}); pass only one of them")
            dropped += 1
    return records, sources, dropped


def _unlearned(records: Sequence[dict[str, Any]], warn: Callable[[str], None]) -> list[str]:
    """README lines (and a warning each) for experiences not learned by their step's end (BWT misleads)."""
    lines = unlearned_experiences(records)
    for line in lines:
        warn(line)
    if not lines:
        return []
    return ["**Check**: experiences below chance right after training on them. They were not learned by "
            "the step's end (too little training, or training that swings between old and new classes from "
            "epoch to epoch), so their backward transfer and forgetting read as little forgotten:", "",
            *(f"- {line}" for line in lines), ""]


def _lr_choices(records: Sequence[dict[str, Any]]) -> list[str]:
    """README lines: the LR each `tuned` evaluation chose per (method, dataset, IPC, arch), how many
    selections chose it, and a flag on choices at the grid's edge (the best LR may lie outside the grid)."""
    chosen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for rec in records:
        config = rec.get("config")
        sel = config.get("lr_selection") if isinstance(config, dict) else None
        if not isinstance(sel, dict) or not isinstance(sel.get("chosen"), int | float):
            continue
        row = chosen.setdefault(tuple(rec.get(k) for k in ("method", "dataset", "ipc", "arch")),
                                {"picks": {}, "grids": set(), "edge": set()})
        grid = [float(v) for v in sel.get("grid") or [] if isinstance(v, int | float)]
        # one selection is shared by every record of its evaluation: count it once (by seed and grid)
        row["picks"].setdefault(float(sel["chosen"]), set()).add(json.dumps([sel.get("seed"), grid]))
        row["grids"].add(", ".join(f"{v:g}" for v in grid))
        edge = sel.get("at_grid_edge")
        if edge is None and grid:
            edge = float(sel["chosen"]) in (min(grid), max(grid))
        if edge:
            row["edge"].add("smallest" if grid and float(sel["chosen"]) == min(grid) else "largest")
    if not chosen:
        return []
    table = []
    for (method, dataset, ipc, arch), row in sorted(chosen.items(), key=lambda kv: str(kv[0])):
        picks = sorted(row["picks"].items())
        lr = "; ".join(f"{v:g}" + (f" ({len(n)}×)" if len(picks) > 1 else "") for v, n in picks)
        edge = f"⚠ {' and '.join(sorted(row['edge']))} LR of the grid" if row["edge"] else ""
        table.append({"method": method, "dataset": dataset, "IPC": DASH if ipc is None else ipc,
                      "arch": arch, "chosen LR": lr, "grid": " / ".join(sorted(row["grids"])), "edge": edge})
    lines = ["## Tuned learning rates", "",
             "`tuned` LR protocol: the LR each evaluation chose on the validation split, per method, "
             "dataset, IPC and architecture ((k×): k selections chose it, e.g. other base seeds)."]
    n_edge = sum(bool(r["edge"]) for r in chosen.values())
    if n_edge:
        lines[-1] += (f" {n_edge} of these rows chose the smallest or largest LR of the grid (⚠): the best "
                      "LR may lie outside it; widen the grid before trusting those numbers.")
    return [*lines, "", to_markdown(pd.DataFrame(table), lead=4), ""]


def _owned(out: Path) -> list[Path]:
    """The files in `out` that an earlier report wrote by the names this one writes (tables of the known
    stages, summary, paired, corruption files, README, the known plots and artifact image grids)."""
    names = ["README.md", "summary.csv", "paired.csv", "corruptions.md", "corruptions.csv",
             "corruptions_long.csv", *(f"{s}.{ext}" for s in STAGES for ext in ("md", "csv", "tex"))]
    plots = [f"{stem}.png" for stems in _STAGE_PLOTS.values() for stem, _, _ in stems]
    plots += ["corruptions.png", "condensation_curves.png"]
    found = [out / n for n in names] + [out / "plots" / n for n in plots]
    found = [f for f in found if f.is_file()]
    grids = out / "plots"
    return found + (sorted(f for f in grids.glob("images_[0-9][0-9]_*.png") if f.is_file())
                    if grids.is_dir() else [])


def _clear_owned(out: Path, warn: Callable[[str], None]) -> None:
    """Remove an earlier report's files from `out` (only the names a report writes), so a table or plot
    this report does not rewrite (a stage now absent) is not left beside the new ones as if current. Only
    when `out` holds a report's README (its title line): other files of those names are someone else's."""
    readme = out / "README.md"
    try:
        ours = readme.is_file() and readme.read_text().startswith(REPORT_TITLE)
    except (OSError, UnicodeDecodeError):
        ours = False
    if not ours:
        return
    for f in _owned(out):
        try:
            f.unlink()
        except OSError as exc:
            warn(f"cannot remove {f} of an earlier report: {exc.strerror or exc}; it may be stale")


def _unknown_files(out: Path, written: Sequence[Path]) -> list[Path]:
    """Files in `out` (and out/plots) this report did not write: not ours to delete, maybe stale."""
    mine = {p.resolve() for p in written}
    found = [f for d in (out, out / "plots") if d.is_dir() for f in sorted(d.iterdir())
             if f.is_file() and f.resolve() not in mine]
    return [f for f in found if f.suffix in (".md", ".csv", ".tex", ".png")]


def _stderr(line: str) -> None:
    print(f"warning: {line}", file=sys.stderr)


def build_report(
    record_paths: Sequence[str | Path] | str | Path,
    out: str | Path,
    artifacts: Sequence[str | Path] | str | Path = (),
    warn: Callable[[str], None] = _stderr,
) -> list[Path]:
    """Read all records (and artifacts), then write summary.csv, per-stage .md/.csv/.tex tables, plots and
    a README.md linking them into `out`; returns the written files. Bad input raises SatmError first.
    A single records file or artifact may be given as a path instead of a list. Each table row where a
    seed was measured more than once with other values is also passed to `warn` (default: stderr)."""
    paths = [Path(record_paths)] if isinstance(record_paths, str | Path) else [Path(p) for p in record_paths]
    arts = [Path(artifacts)] if isinstance(artifacts, str | Path) else [Path(a) for a in artifacts]
    return _build_report(paths, check_out_dir(Path(out)), arts, warn)


def _build_report(record_paths: list[Path], out: Path, artifacts: list[Path],
                  warn: Callable[[str], None]) -> list[Path]:
    if not record_paths:
        raise SatmError("no records files given")
    records, sources, dropped = _merge_records(record_paths)
    records = [with_continual_keys(r) for r in records]
    repeated = _repeated_seeds(records, sources)
    paper = load_paper_numbers()
    logs = [(Path(a), *read_condensation_log(a)) for a in artifacts]
    images = [(Path(a), _load_images(Path(a))) for a in artifacts]

    written: list[Path] = []
    make_out_dir(out)
    _clear_owned(out, warn)
    for line in repeated:
        warn(f"{line} (counted once: the mean of its measurements)")
    summary = summarise(records)
    frame = records_frame(records)
    summary_csv = out / "summary.csv"
    attach_paper(summary, paper).to_csv(summary_csv, index=False)
    written.append(summary_csv)

    present = [s for s in STAGES if (summary["stage"] == s).any()]
    present += sorted(set(summary["stage"].astype(str)) - set(STAGES))
    plot_dir = out / "plots"
    readme = [REPORT_TITLE, "",
              f"Records: {', '.join(f'`{p}`' for p in record_paths)} ({len(records)} records). "
              f"Full long-form summary: [summary.csv](summary.csv).", ""]
    if dropped:
        readme += [f"{dropped} records appeared in more than one records file (or were measured on the same "
                   "set from another directory) and were counted once.", ""]
    if repeated:
        readme += ["Seeds measured more than once with other values (continual: class orders), e.g. two "
                   "records files or two condensed sets run with one seed. Such a seed counts once, valued "
                   "by the mean of its measurements (n counts seeds; summary.csv's `runs` counts "
                   "measurements), so it does not pass for more samples; check the inputs are what you "
                   "meant:", "", *(f"- {line}" for line in repeated), ""]
    readme += _pooled_sets(records)
    if not paper.empty:
        readme += ["Rows and crosses marked *paper* are published numbers (benchmarks/paper_numbers.csv), "
                   "shown for reference beside ours; they were not produced by this code.", ""]
    for stage in present:
        files = write_stage_tables(summary, stage, out, paper=paper)
        written += files
        table = accuracy_table(summary, stage, paper=paper)
        readme += [f"## {stage}", "", stage_caption(stage) + n_note(table, stage) + epochs_note(table), "",
                   *([*CONTINUAL_NOTES, ""] if stage == "continual" else []),
                   " · ".join(f"[{f.suffix[1:]}]({_rel(f, out)})" for f in files), ""]
        if not table.empty:
            readme += [to_markdown(table, table_lead(table, stage))]
        if stage == "continual":
            readme += experience_markdown(summary)
            readme += _unlearned(records, warn)
        for stem, caption, fn in _STAGE_PLOTS.get(stage, []):
            png = fn(frame, plot_dir / f"{stem}.png", paper)
            if png is not None:
                written.append(png)
                readme += [f"![{caption}]({_rel(png, out)})", ""]

    corrupted_files, corrupted_lines = corruption_section(records, out)
    written += corrupted_files
    readme += corrupted_lines

    pairs = paired_table(records)
    if not pairs.empty:
        paired_csv = out / "paired.csv"
        pairs.to_csv(paired_csv, index=False)
        written.append(paired_csv)
        readme += ["## Paired comparisons (SATM minus each other method)", "",
                   "Each unit is one set under one evaluation base seed (continual: one class order), "
                   "valued by the mean of its runs; a difference is taken only between units both methods "
                   "have, so seed-to-seed variance cancels. p-values are two-sided (paired t-test; exact "
                   f"sign test). [csv]({_rel(paired_csv, out)})", "", paired_markdown(pairs), ""]

    readme += _lr_choices(records)

    if artifacts:
        readme += ["## Condensation", ""]
        curves = plot_condensation_curves([a for a, _, _ in logs], plot_dir / "condensation_curves.png")
        if curves is not None:
            written.append(curves)
            readme += ["![Loss and hypergradient norm during condensation]"
                       f"({_rel(curves, out)})", ""]
        else:
            readme += ["No condensation logs (log.jsonl) in the given artifacts.", ""]
        kinds = [artifact_label({**m, **(im[3] if im else {})}, a)
                 for (a, m, _), (_, im) in zip(logs, images, strict=True)]
        for i, (art, loaded) in enumerate(images):
            meta = next(m for a, m, _ in logs if a == art)
            if loaded is None:
                readme += [f"Images of `{art}` not drawn: satm_cl.synthetic is not available.", ""]
                continue
            pixels, labels, names, syn_meta = loaded
            label = artifact_label({**meta, **syn_meta}, art)
            if kinds.count(label) > 1:  # two sets of one kind: say which is which
                label += f" ({art.name})" if [a.name for a in artifacts].count(art.name) == 1 else f" ({art})"
            names = names or list(meta.get("class_names", []))
            png = plot_image_grid(pixels, labels, names, plot_dir / f"images_{i:02d}_{art.name}.png",
                                  title=f"Synthetic images: {label}")
            if png is not None:
                written.append(png)
                readme += [f"![Synthetic images: {label}]({_rel(png, out)})", ""]
            readme += [f"`{art}`: {_settings({**meta, **syn_meta})}.", ""]

    readme_path = out / "README.md"
    readme_path.write_text("\n".join(readme).rstrip() + "\n")
    written.append(readme_path)
    others = _unknown_files(out, written)
    if others:
        warn(f"{out} also holds files this report did not write (left as they are; remove them if they "
             f"are stale): {', '.join(str(f.relative_to(out)) for f in others)}")
    return written


def summary_frame(record_paths: Sequence[Path]) -> pd.DataFrame:
    """The summary (with paper columns) of some records files, without writing anything."""
    records: list[dict[str, Any]] = []
    for path in record_paths:
        records.extend(read_records(path))
    return attach_paper(summarise(records), load_paper_numbers())
