"""The reporter: records files (and condensation artifacts) in, tables + plots + a README out.

`build_report` reads and checks every input before it writes anything, so bad input leaves `out` untouched.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from satm_cl.errors import SatmError
from satm_cl.io import check_out_dir, make_out_dir
from satm_cl.records import read_records
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
    STAGE_LAYOUT,
    STAGES,
    accuracy_table,
    attach_paper,
    experience_markdown,
    load_paper_numbers,
    records_frame,
    stage_caption,
    summarise,
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


def _pooled_sets(records: Sequence[dict[str, Any]]) -> list[str]:
    """README lines naming every table row that pools runs of several synthetic sets (by fingerprint): the
    condensation seeds of a study, or sets made with other settings, which the records cannot tell apart."""
    sets: dict[tuple[Any, ...], dict[str, set[str]]] = {}
    for rec in records:
        config = rec.get("config")
        if not isinstance(config, dict) or config.get("set_fingerprint") is None:
            continue
        # the table's row keys: other LR protocols, training lengths or test sets are other rows already
        key = (rec.get("stage"), rec.get("method"), rec.get("dataset"), rec.get("ipc"), rec.get("arch"),
               rec.get("lr_protocol", "learned"), config.get("epochs"), rec.get("test_dataset"))
        paths = sets.setdefault(key, {}).setdefault(str(config["set_fingerprint"]), set())
        paths.add(str(config.get("artifact") or f"{rec.get('method')} baseline"))
    pooled = {k: v for k, v in sets.items() if len(v) > 1}
    if not pooled:
        return []
    lines = ["Rows pooling the runs of several synthetic sets (their mean ± std is over all those runs): the "
             "condensation seeds of one setting, or sets made with other settings, which records cannot tell "
             "apart; check they are what you meant.", ""]
    for key, by_set in sorted(pooled.items(), key=lambda kv: str(kv[0])):
        stage, method, dataset, ipc, arch, protocol, epochs, test = key
        row = " · ".join(str(v) for v in (stage, method, dataset, f"IPC {ipc}", arch, f"{protocol} LR",
                                          f"{epochs} epochs", test) if v is not None)
        where = "; ".join(f"{fp[:8]}: {', '.join(sorted(paths))}" for fp, paths in sorted(by_set.items()))
        lines.append(f"- {row}: {len(by_set)} sets ({where})")
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


def _merge_records(record_paths: Sequence[Path]) -> tuple[list[dict[str, Any]], int]:
    """Every record of the files, a record present in several files (a file passed twice, or a run copied
    into two outputs) once: counted twice it would pass for another seed or class order. The same run with
    different values in two files is a SatmError (which one is right is for the user to say)."""
    records: list[dict[str, Any]] = []
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
                continue
            value, where = first[ident]
            if value != rec.get("value"):
                run = f"{rec.get('method')} {rec.get('stage')} {rec.get('metric')} seed {rec.get('seed')}"
                raise SatmError(f"{where} and {path} both hold {run} with other values ({value} vs "
                                f"{rec.get('value')}); pass only one of them")
            dropped += 1
    return records, dropped


def build_report(
    record_paths: Sequence[str | Path] | str | Path,
    out: str | Path,
    artifacts: Sequence[str | Path] | str | Path = (),
) -> list[Path]:
    """Read all records (and artifacts), then write summary.csv, per-stage .md/.csv/.tex tables, plots and
    a README.md linking them into `out`; returns the written files. Bad input raises SatmError first.
    A single records file or artifact may be given as a path instead of a list."""
    paths = [Path(record_paths)] if isinstance(record_paths, str | Path) else [Path(p) for p in record_paths]
    arts = [Path(artifacts)] if isinstance(artifacts, str | Path) else [Path(a) for a in artifacts]
    return _build_report(paths, check_out_dir(Path(out)), arts)


def _build_report(record_paths: list[Path], out: Path, artifacts: list[Path]) -> list[Path]:
    if not record_paths:
        raise SatmError("no records files given")
    records, dropped = _merge_records(record_paths)
    records = [with_continual_keys(r) for r in records]
    paper = load_paper_numbers()
    logs = [(Path(a), *read_condensation_log(a)) for a in artifacts]
    images = [(Path(a), _load_images(Path(a))) for a in artifacts]

    written: list[Path] = []
    make_out_dir(out)
    summary = summarise(records)
    frame = records_frame(records)
    summary_csv = out / "summary.csv"
    attach_paper(summary, paper).to_csv(summary_csv, index=False)
    written.append(summary_csv)

    present = [s for s in STAGES if (summary["stage"] == s).any()]
    present += sorted(set(summary["stage"].astype(str)) - set(STAGES))
    plot_dir = out / "plots"
    readme = ["# SATM benchmark report", "",
              f"Records: {', '.join(f'`{p}`' for p in record_paths)} ({len(records)} records). "
              f"Full long-form summary: [summary.csv](summary.csv).", ""]
    if dropped:
        readme += [f"{dropped} records appeared in more than one records file (or were measured on the same "
                   "set from another directory) and were counted once.", ""]
    readme += _pooled_sets(records)
    if not paper.empty:
        readme += ["Rows and crosses marked *paper* are published numbers (benchmarks/paper_numbers.csv), "
                   "shown for reference beside ours; they were not produced by this code.", ""]
    for stage in present:
        files = write_stage_tables(summary, stage, out, paper=paper)
        written += files
        table = accuracy_table(summary, stage, paper=paper)
        lead = len(STAGE_LAYOUT.get(stage, STAGE_LAYOUT["in-domain"])[0]) + ("lr_protocol" in table.columns)
        readme += [f"## {stage}", "", stage_caption(stage), "",
                   " · ".join(f"[{f.suffix[1:]}]({_rel(f, out)})" for f in files), ""]
        if not table.empty:
            readme += [to_markdown(table, lead)]
        if stage == "continual":
            readme += experience_markdown(summary)
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
    return written


def summary_frame(record_paths: Sequence[Path]) -> pd.DataFrame:
    """The summary (with paper columns) of some records files, without writing anything."""
    records: list[dict[str, Any]] = []
    for path in record_paths:
        records.extend(read_records(path))
    return attach_paper(summarise(records), load_paper_numbers())
