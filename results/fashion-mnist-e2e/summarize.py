"""Write results/fashion-mnist-e2e/README.md from what run.sh measured: stage times (times.csv), the
evaluation records, the artifact's own description and the expert store's manifest.

usage: python summarize.py RESULTS_DIR WORK_DIR
"""

from __future__ import annotations

import csv
import json
import platform
import statistics
import subprocess
import sys
from pathlib import Path

TARGET = 85.0  # issue 10: Fashion-MNIST IPC 10 test accuracy, end to end
BUDGET_S = {"experts": 17 * 60, "condense": 26 * 60, "total": 90 * 60}  # the preset's budgets, issue 10


def _last_times(path: Path) -> dict[str, tuple[float, str]]:
    """The last recorded wall time of each stage (a resumed stage appends a new row)."""
    out: dict[str, tuple[float, str]] = {}
    with path.open() as f:
        for row in csv.DictReader(f):
            out[row["stage"]] = (float(row["seconds"]), row["command"])
    return out


def main(results: Path, work: Path) -> None:
    times = _last_times(results / "times.csv")
    recs = [json.loads(line) for line in (results / "records.jsonl").read_text().splitlines() if line]
    mine = [
        r
        for r in recs
        if r.get("stage") == "in-domain" and r.get("metric") == "test_accuracy" and r.get("arch") == "convnet"
    ]
    accs = [r["value"] for r in mine]
    eval_epochs = sorted({r["config"]["epochs"] for r in mine})
    syn = json.loads((results / "synthetic.json").read_text())
    cfg = syn["config"]
    store = work / "cache" / "experts" / syn["expert_store"] / "manifest.json"
    experts = json.loads(store.read_text())["experts"] if store.exists() else {}
    expert_test = [e["accuracy"]["test"][-1] for e in experts.values()]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()

    total = sum(t for t, _ in times.values())
    mean = statistics.mean(accs) if accs else float("nan")
    sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
    lines = [
        "# Fashion-MNIST IPC 10, end to end on 2 CPU cores",
        "",
        f"Command: `bash results/fashion-mnist-e2e/run.sh` (this README: `run.sh report`); commit {commit}; "
        f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores, no GPU. One run.",
        "Stages: expert trajectories (preset `fashion-mnist-ipc10`), condensation with the preset's method "
        f"(`{syn['method']}`), then `satm-cl evaluate --suite in-domain --runs 5`: 5 ConvNets trained from "
        "scratch on the condensed set (the set's learned lr, "
        f"{'/'.join(map(str, eval_epochs))} epochs), scored on the official 10k test split.",
        "",
        "| stage | wall time | budget | command |",
        "|---|---|---|---|",
    ]
    for name, (secs, command) in times.items():
        budget = BUDGET_S.get(name)
        lines.append(
            f"| {name} | {secs / 60:.1f} min | {f'{budget / 60:.0f} min' if budget else '–'} | `{command}` |"
        )
    lines.append(f"| **total** | **{total / 60:.1f} min** | {BUDGET_S['total'] / 60:.0f} min | |")
    lines += [
        "",
        f"**Test accuracy: {mean:.1f} ± {sd:.1f} %** (mean ± sd over {len(accs)} runs: "
        f"{', '.join(f'{a:.1f}' for a in accs)}); target ≥ {TARGET:.0f} %: "
        + ("met." if mean >= TARGET else f"missed by {TARGET - mean:.1f} points."),
        "",
        "What was run:",
        f"- experts: {len(experts)} × {cfg['expert']['epochs']} epochs on the whole train split "
        f"(train_subset {cfg['expert']['train_subset']}, ZCA {cfg['expert']['zca']}), "
        f"ConvNet {cfg['expert']['arch_kwargs']}, {cfg['expert'].get('precision', 'fp32')}, lr "
        f"{cfg['expert']['lr']}, batch {cfg['expert']['batch_size']}; their test accuracy after training: "
        + (f"{min(expert_test):.1f}–{max(expert_test):.1f} %" if expert_test else "n/a"),
        f"- condensation: {syn['iterations']} outer iterations, N {cfg['syn_steps']}, "
        f"M {cfg['expert_epochs']}, T {cfg['max_start_epoch']}, lr_img {cfg['lr_img']}, "
        f"α₀ {cfg['lr_init']}, batch_syn {cfg['batch_syn']}, "
        f"minimizer {cfg['minimizer']} ρ {cfg['rho']}, truncate {cfg['truncate']} "
        f"(descent truncated: {cfg['truncate_descent']}), TR {cfg['reuse_trajectory']}, "
        f"unroll {cfg.get('precision', 'fp32')}, validation every {cfg['eval_every']}; "
        f"the set kept is the one of iteration {syn['selection']['iteration']} "
        f"({syn['selection']['rule']}, val accuracy {syn['selection']['val_accuracy']:.1f} %)",
        f"- artifact wall time (condensation alone, from the artifact): {syn['wall_time_s'] / 60:.1f} min",
        "",
        "The test split is read only by the evaluation stage; every choice inside the run (the kept "
        "iteration) is made on the val split.",
    ]
    others = sorted(results.glob("*-records.jsonl"))
    if others:  # other sets evaluated the same way (the first candidate, MTT with the same preset)
        lines += [
            "",
            "Other sets evaluated the same way (5 runs, same test split):",
            "",
            "| set | method | ZCA | precision | experts | M | iterations | kept iteration | val % "
            "| eval epochs | test % (mean ± sd) |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for rec_file in others:
            name = rec_file.name.removesuffix("-records.jsonl")
            other = json.loads((results / f"{name}-synthetic.json").read_text())
            theirs = [
                r
                for r in map(json.loads, rec_file.read_text().splitlines())
                if r.get("stage") == "in-domain" and r.get("metric") == "test_accuracy"
            ]
            vals = [r["value"] for r in theirs]
            epochs = "/".join(str(e) for e in sorted({r["config"]["epochs"] for r in theirs}))
            sel = other["selection"]
            lines.append(
                f"| `{name}` | {other['method']} | {other['config']['expert']['zca']} | "
                f"{other['config'].get('precision', 'fp32')} | {other['config']['expert']['num_experts']} | "
                f"{other['config']['expert_epochs']} | "
                f"{other['iterations']} | {sel['iteration']} | {sel['val_accuracy']:.1f} | {epochs} | "
                f"{statistics.mean(vals):.1f} ± {statistics.stdev(vals):.1f} |"
            )
    choice = results / "choice.md"
    if choice.exists():  # how the preset was chosen, written by hand beside the numbers
        lines += ["", choice.read_text().strip()]
    (results / "README.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
