"""SATM vs MTT on digits IPC 1: a paired, seed-matched study with every choice made on the val split.

Protocol (fixed before any number was seen, see README.md here):
  stage A  seeds 0-4: MTT and five SATM variants are condensed with the `digits-ipc1` preset (same
           iterations, same seed -> same initial images, experts, start epochs and inner batches).
           Each set is trained on from scratch 5 times (the evaluate protocol); every run is scored on
           the val split and the test split from one training. The SATM variant with the highest mean
           val accuracy over the five seeds is chosen. Test numbers play no part in the choice.
  stage B  seeds 5-9: MTT and the chosen variant only (held-out seeds, untouched by the choice).
  summary  test accuracy of the chosen variant vs MTT, paired by seed, over seeds 0-9 and over 5-9.
  stage C  (added after A and B, to test the paper's motivation that sharpness matters at long horizons)
           seeds 0-4: MTT and SATM (rho 0.1, 0.5) with 80 inner steps instead of 20. For each method
           the config with the best mean val accuracy over all its variants (20 or 80 steps) is kept,
           and the two kept configs are compared on test, paired by seed.

Usage:  python results/digits-satm-vs-mtt/study.py run [--jobs 2]
Every job is a subprocess with OMP_NUM_THREADS=1 (byte-reproducible) and skips work already on disk,
so a rerun resumes. Outputs: artifacts/, evals/<variant>-s<seed>.json, summary.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics as st
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE / "artifacts"
EVALS = HERE / "evals"
RUNS = 5
STAGE_A = range(5)
STAGE_B = range(5, 10)

# variant -> (method, overrides of the resolved digits-ipc1 config)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "mtt": ("mtt", {}),
    "satm": ("satm", {}),  # the preset: SAM rho 0.5, TUH K=10 (ascent and descent), TR, closed-form LR
    "satm-rho0.1": ("satm", {"rho": 0.1}),
    "satm-rho2": ("satm", {"rho": 2.0}),
    # the sharpness term alone: exact hypergradients in both passes, autograd LR, no reuse
    "satm-exact": ("satm", {"truncate": None, "reuse_trajectory": False, "lr_grad": "autograd"}),
    "satm-smooth": ("satm", {"smooth_samples": 2, "smooth_sigma": 0.1}),
    # stage C: the long horizon (SATM keeps TUH K=10 and TR; MTT unrolls all 80 steps exactly)
    "mtt-n80": ("mtt", {"syn_steps": 80}),
    "satm-n80-rho0.1": ("satm", {"syn_steps": 80, "rho": 0.1}),
    "satm-n80": ("satm", {"syn_steps": 80}),
}
STAGE_A_VARIANTS = ("mtt", "satm", "satm-rho0.1", "satm-rho2", "satm-exact", "satm-smooth")
STAGE_C_VARIANTS = ("mtt-n80", "satm-n80-rho0.1", "satm-n80")


def config(variant: str, seed: int) -> Any:
    from satm_cl.config import resolve_config

    method, overrides = VARIANTS[variant]
    return replace(resolve_config("digits", 1, method, overrides={"seed": seed}), **overrides)


def artifact(variant: str, seed: int) -> Path:
    return ARTIFACTS / f"{variant}-s{seed}"


def eval_file(variant: str, seed: int) -> Path:
    return EVALS / f"{variant}-s{seed}.json"


# ---------------------------------------------------------------- jobs (run in a subprocess each)
def job_condense(variant: str, seed: int) -> None:
    import torch

    from satm_cl.condense.api import condense

    cfg = config(variant, seed)
    out = artifact(variant, seed)
    done = out / "synthetic.json"
    if done.exists() and json.loads(done.read_text())["config"] == json.loads(json.dumps(cfg.to_dict())):
        return
    condense(cfg, out, torch.device("cpu"), resume=True, progress=False)


def job_evaluate(variant: str, seed: int) -> None:
    import torch

    from satm_cl.data import create_dataset
    from satm_cl.evaluate.protocol import evaluate_run, set_eval_defaults
    from satm_cl.io import write_json
    from satm_cl.synthetic import load_synthetic

    target = eval_file(variant, seed)
    if target.exists():
        return
    syn = load_synthetic(artifact(variant, seed))
    splits = create_dataset("digits", val_fraction=float(syn.meta["config"]["expert"]["val_fraction"]))
    prep = syn.preprocessor()
    tests = {name: (prep.transform(s.x), s.y) for name, s in (("val", splits.val), ("test", splits.test))}
    _, epochs = set_eval_defaults(syn)
    rows = [evaluate_run(syn, "convnet", tests, epochs, 10 * seed + r, torch.device("cpu")) for r in range(RUNS)]
    write_json(
        target,
        {
            "variant": variant,
            "seed": seed,
            "eval_seeds": [10 * seed + r for r in range(RUNS)],
            "epochs": epochs,
            "lr": float(syn.lr),
            "selected_iteration": syn.meta["selection"]["iteration"],
            "val": [row["val"] for row in rows],
            "test": [row["test"] for row in rows],
        },
    )


# ---------------------------------------------------------------- orchestration
def spawn(kind: str, variant: str, seed: int) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    t0 = time.time()
    proc = subprocess.run(
        [sys.executable, __file__, kind, variant, str(seed)], env=env, capture_output=True, text=True
    )
    status = "ok" if proc.returncode == 0 else f"FAILED ({proc.returncode}): {proc.stderr.strip()[-400:]}"
    print(f"{kind:9s} {variant:12s} s{seed}  {time.time() - t0:6.0f} s  {status}", flush=True)
    if proc.returncode != 0:
        raise SystemExit(1)


def run_all(pairs: list[tuple[str, int]], jobs: int) -> None:
    """Condense then evaluate each (variant, seed); an evaluation starts as soon as its set exists."""

    def both(pair: tuple[str, int]) -> None:
        if not eval_file(*pair).exists():
            spawn("condense", *pair)
            spawn("evaluate", *pair)

    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(both, pairs))


def load(variant: str, seeds: range) -> dict[int, dict[str, Any]]:
    return {s: json.loads(eval_file(variant, s).read_text()) for s in seeds if eval_file(variant, s).exists()}


def mean_std(values: list[float]) -> str:
    return f"{st.mean(values):.1f} ± {st.stdev(values):.1f}" if len(values) > 1 else f"{values[0]:.1f}"


def choose() -> str:
    """The SATM variant with the highest mean val accuracy over stage A (all runs of all seeds)."""
    return best_on_val([v for v in STAGE_A_VARIANTS if v != "mtt"])


def best_on_val(variants: list[str]) -> str:
    val = {v: [a for e in load(v, STAGE_A).values() for a in e["val"]] for v in variants}
    return max(val, key=lambda v: (st.mean(val[v]), v))


def paired(chosen: str, seeds: range, reference: str = "mtt") -> dict[str, Any]:
    from scipy import stats

    a, b = load(chosen, seeds), load(reference, seeds)
    common = sorted(set(a) & set(b))
    sa = [st.mean(a[s]["test"]) for s in common]
    sb = [st.mean(b[s]["test"]) for s in common]
    diff = [x - y for x, y in zip(sa, sb, strict=True)]
    return {
        "seeds": common,
        "satm_test_per_seed": sa,
        "mtt_test_per_seed": sb,
        "satm_runs": [x for s in common for x in a[s]["test"]],
        "mtt_runs": [x for s in common for x in b[s]["test"]],
        "diff_mean": st.mean(diff),
        "diff_std": st.stdev(diff) if len(diff) > 1 else 0.0,
        "wins": sum(d > 0 for d in diff),
        "t_test_p": float(stats.ttest_rel(sa, sb).pvalue) if len(diff) > 1 else None,
        "wilcoxon_p": float(stats.wilcoxon(sa, sb).pvalue) if len(diff) > 5 else None,
    }


def summarize() -> None:
    lines = ["# digits IPC 1: SATM vs MTT (generated by study.py summary)", ""]
    lines += ["## Stage A (seeds 0-4): val decides; test shown for transparency only", ""]
    lines += ["| variant | val (25 runs) | test (25 runs) | test per seed |", "|---|---|---|---|"]
    for v in STAGE_A_VARIANTS:
        ev = load(v, STAGE_A)
        if not ev:
            continue
        val = [x for e in ev.values() for x in e["val"]]
        test = [x for e in ev.values() for x in e["test"]]
        per_seed = " / ".join(f"{st.mean(e['test']):.1f}" for _, e in sorted(ev.items()))
        lines.append(f"| {v} | {mean_std(val)} | {mean_std(test)} | {per_seed} |")
    chosen = choose()
    out: dict[str, Any] = {"chosen": chosen, "rule": "highest mean val accuracy over seeds 0-4, 5 runs each"}
    lines += ["", f"Chosen on val: **{chosen}**.", ""]
    for name, seeds in (("all seeds 0-9", range(10)), ("held-out seeds 5-9", STAGE_B)):
        p = paired(chosen, seeds)
        out[name] = p
        lines += [
            f"## Test, {name} ({len(p['seeds'])} seeds x {RUNS} runs)",
            "",
            f"- {chosen}: {mean_std(p['satm_runs'])}; MTT: {mean_std(p['mtt_runs'])}",
            f"- paired difference of per-seed means ({chosen} - MTT): {p['diff_mean']:+.2f} ± {p['diff_std']:.2f};"
            f" {chosen} ahead on {p['wins']}/{len(p['seeds'])} seeds; paired t-test p = {p['t_test_p']}"
            + (f"; Wilcoxon p = {p['wilcoxon_p']}" if p["wilcoxon_p"] is not None else ""),
            "",
        ]
    if all(load(v, STAGE_A) for v in STAGE_C_VARIANTS):
        lines += ["## Stage C (seeds 0-4): 80 inner steps", ""]
        lines += ["| variant | val (25 runs) | test (25 runs) | test per seed |", "|---|---|---|---|"]
        for v in STAGE_C_VARIANTS:
            ev = load(v, STAGE_A)
            val = [x for e in ev.values() for x in e["val"]]
            test = [x for e in ev.values() for x in e["test"]]
            per_seed = " / ".join(f"{st.mean(e['test']):.1f}" for _, e in sorted(ev.items()))
            lines.append(f"| {v} | {mean_std(val)} | {mean_std(test)} | {per_seed} |")
        best_mtt = best_on_val([v for v in VARIANTS if VARIANTS[v][0] == "mtt"])
        best_satm = best_on_val([v for v in VARIANTS if VARIANTS[v][0] == "satm"])
        p = paired(best_satm, STAGE_A, reference=best_mtt)
        out["stage C"] = {"best_mtt": best_mtt, "best_satm": best_satm, **p}
        lines += [
            "",
            f"Best on val over every variant of each method: MTT **{best_mtt}**, SATM **{best_satm}**.",
            f"Test, seeds 0-4: {best_satm} {mean_std(p['satm_runs'])} vs {best_mtt} {mean_std(p['mtt_runs'])};"
            f" paired difference {p['diff_mean']:+.2f} ± {p['diff_std']:.2f}, ahead on {p['wins']}/5 seeds,"
            f" paired t-test p = {p['t_test_p']}",
            "",
        ]
    (HERE / "summary.md").write_text("\n".join(lines) + "\n")
    (HERE / "summary.json").write_text(json.dumps(out, indent=2) + "\n")
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["run", "summary", "condense", "evaluate"])
    ap.add_argument("variant", nargs="?")
    ap.add_argument("seed", nargs="?", type=int)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    if args.what == "condense":
        job_condense(args.variant, args.seed)
    elif args.what == "evaluate":
        job_evaluate(args.variant, args.seed)
    elif args.what == "run":
        # stage A, seed-major so early seeds finish first for every variant
        run_all([(v, s) for s in STAGE_A for v in STAGE_A_VARIANTS], args.jobs)
        chosen = choose()
        print(f"chosen on val: {chosen}", flush=True)
        run_all([(v, s) for s in STAGE_B for v in ("mtt", chosen)], args.jobs)
        run_all([(v, s) for s in STAGE_A for v in STAGE_C_VARIANTS], args.jobs)
        summarize()
    else:
        summarize()


if __name__ == "__main__":
    main()
