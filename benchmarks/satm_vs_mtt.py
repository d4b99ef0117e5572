"""SATM vs MTT at IPC 1: a paired, seed-matched study with every choice made on the val split.

Protocol (fixed before any number was seen; results/digits-satm-vs-mtt/README.md):
  stage A  seeds 0-4: MTT and SATM variants are condensed with the `DATASET-ipc1` preset (same
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
  stage D  (added after C, declared before running it) seeds 5-9 for the two configs kept in stage C and
           for MTT at SATM's horizon: the held-out comparison of the val-chosen configs.

The protocol per dataset is in PROTOCOLS: digits runs stages A (six variants), B, C and D; other
datasets run stage A with MTT and SATM at digits' val-chosen radius only (CPU budget).

Usage:  python benchmarks/satm_vs_mtt.py run [--dataset digits] [--jobs 2] [--executor local|ray]
                                          [--ray-address HEAD:PORT]
Each (variant, condensation seed) is one job of a `satm_cl.execution` grid (local worker processes by
default, or Ray tasks), run with one torch thread (byte-reproducible), and skips work already on disk,
so a rerun resumes. Outputs in results/<dataset>-satm-vs-mtt/: artifacts/, evals/<variant>-s<seed>.json,
summary.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics as st
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

DATASET = os.environ.get("SATM_STUDY_DATASET", "digits")  # set by --dataset, inherited by the jobs
HERE = Path(__file__).resolve().parents[1] / "results" / f"{DATASET}-satm-vs-mtt"
ARTIFACTS = HERE / "artifacts"
EVALS = HERE / "evals"
RUNS = 5
STAGE_A = range(5)
STAGE_B = range(5, 10)

# Every variant starts from the CPU preset as it stood when the study began (20 inner steps, rho 0.5),
# so the study reruns byte for byte after the presets adopt its outcome.
BASE: dict[str, Any] = {"syn_steps": 20, "rho": 0.5}
# variant -> (method, overrides of the resolved DATASET-ipc1 config on top of BASE)
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
    # diagnostics (run by hand for a few seeds, not part of a protocol): which part of SATM costs what
    "satm-rho0": ("satm", {"rho": 0.0}),  # TUH + TR + closed-form alpha, no sharpness
    "mtt-tuh10": ("mtt", {"truncate": 10}),  # TUH alone
    "satm-rho0.1-exact-descent": ("satm", {"rho": 0.1, "truncate_descent": False, "reuse_trajectory": False}),
    "satm-exact-rho0.1": (
        "satm",
        {"rho": 0.1, "truncate": None, "reuse_trajectory": False, "lr_grad": "autograd"},
    ),
}
PROTOCOLS: dict[str, dict[str, tuple[str, ...]]] = {
    "digits": {
        "a": ("mtt", "satm", "satm-rho0.1", "satm-rho2", "satm-exact", "satm-smooth"),
        "c": ("mtt-n80", "satm-n80-rho0.1", "satm-n80"),
    },
}
# elsewhere (CPU budget): MTT against SATM at the radius chosen on digits, 20 inner steps, seeds 0-4
_PROTOCOL = PROTOCOLS.get(DATASET, {"a": ("mtt", "satm-rho0.1"), "c": ()})
STAGE_A_VARIANTS = _PROTOCOL["a"]
STAGE_C_VARIANTS = _PROTOCOL["c"]
STAGE_B_SEEDS = STAGE_B if DATASET in PROTOCOLS else range(0)


def config(variant: str, seed: int) -> Any:
    from satm_cl.config import resolve_config

    method, overrides = VARIANTS[variant]
    cfg = resolve_config(DATASET, 1, method, overrides={"seed": seed})
    return replace(cfg, **{**BASE, **overrides})


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
    splits = create_dataset(DATASET, val_fraction=float(syn.meta["config"]["expert"]["val_fraction"]))
    prep = syn.preprocessor()
    tests = {name: (prep.transform(s.x), s.y) for name, s in (("val", splits.val), ("test", splits.test))}
    _, epochs = set_eval_defaults(syn)
    rows = [
        evaluate_run(syn, "convnet", tests, epochs, 10 * seed + r, torch.device("cpu")) for r in range(RUNS)
    ]
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
def prepare_experts() -> None:
    """Train (or find) the expert store once, before parallel jobs could race to train it."""
    import torch

    from satm_cl.experts.train import train_experts
    from satm_cl.io import cache_dir

    train_experts(config("mtt", 0).expert, cache_dir(None), torch.device("cpu"))


def job_both(pair: tuple[str, int]) -> float:
    """One grid job: condense (variant, seed), then evaluate it; returns its wall time in seconds."""
    t0 = time.time()
    job_condense(*pair)
    job_evaluate(*pair)
    return time.time() - t0


def run_all(pairs: list[tuple[str, int]], grid: Any) -> None:
    """Condense then evaluate each missing (variant, seed) as one job of the grid; every failure is one
    line, and the study stops (exit 1) after the others have finished."""
    from satm_cl.execution import Job, JobResult, run_jobs

    def say(r: JobResult) -> None:
        variant, seed = r.job.spec
        status = f"ok  {r.value:6.0f} s" if r.ok else f"FAILED: {r.error}"
        print(f"{variant:16s} s{seed}  {status}", flush=True)

    jobs = [Job(f"{v} seed {s}", job_both, (v, s)) for v, s in pairs if not eval_file(v, s).exists()]
    results = run_jobs(jobs, grid, say)
    if any(not r.ok for r in results):
        raise SystemExit(1)


def load(variant: str, seeds: range) -> dict[int, dict[str, Any]]:
    return {s: json.loads(eval_file(variant, s).read_text()) for s in seeds if eval_file(variant, s).exists()}


def mean_std(values: list[float]) -> str:
    return f"{st.mean(values):.1f} ± {st.stdev(values):.1f}" if len(values) > 1 else f"{values[0]:.1f}"


def choose() -> str:
    """The SATM variant with the highest mean val accuracy over stage A (all runs of all seeds)."""
    return best_on_val([v for v in STAGE_A_VARIANTS if v != "mtt"])


def best_on_val(variants: list[str]) -> str:
    val = {v: [a for e in load(v, STAGE_A).values() for a in e["val"]] for v in variants if load(v, STAGE_A)}
    return max(val, key=lambda v: (st.mean(val[v]), v))


def best_configs() -> tuple[str, str]:
    """(SATM, MTT): each method's variant with the best mean val accuracy over seeds 0-4."""
    best_satm = best_on_val([v for v in VARIANTS if VARIANTS[v][0] == "satm"])
    return best_satm, best_on_val([v for v in VARIANTS if VARIANTS[v][0] == "mtt"])


def horizon_mate(variant: str) -> str:
    """The MTT variant with the same number of inner steps as `variant`."""
    steps = VARIANTS[variant][1].get("syn_steps")
    return next(v for v, (m, o) in VARIANTS.items() if m == "mtt" and o.get("syn_steps") == steps)


def paired(chosen: str, seeds: range, reference: str = "mtt") -> dict[str, Any]:
    """Test accuracy of `chosen` vs `reference`, paired by condensation seed (the unit)."""
    from satm_cl.report.paired import paired_stats

    a, b = load(chosen, seeds), load(reference, seeds)
    common = sorted(set(a) & set(b))
    sa = [st.mean(a[s]["test"]) for s in common]
    sb = [st.mean(b[s]["test"]) for s in common]
    return {
        "seeds": common,
        "satm_test_per_seed": sa,
        "mtt_test_per_seed": sb,
        "satm_runs": [x for s in common for x in a[s]["test"]],
        "mtt_runs": [x for s in common for x in b[s]["test"]],
        **paired_stats(sa, sb),
    }


def variant_table(variants: Any, seeds: range, only: list[int] | None = None) -> list[str]:
    """Markdown rows: val and test over all runs of the given seeds, and the test mean per seed."""
    rows = ["| variant | val | test | test per seed |", "|---|---|---|---|"]
    for v in variants:
        ev = {s: e for s, e in load(v, seeds).items() if only is None or s in only}
        if not ev:
            continue
        val = [x for e in ev.values() for x in e["val"]]
        test = [x for e in ev.values() for x in e["test"]]
        per_seed = " / ".join(f"{st.mean(e['test']):.1f}" for _, e in sorted(ev.items()))
        rows.append(f"| {v} | {mean_std(val)} | {mean_std(test)} | {per_seed} |")
    return rows


def summarize() -> None:
    lines = [f"# {DATASET} IPC 1: SATM vs MTT (generated by benchmarks/satm_vs_mtt.py summary)", ""]
    lines += ["## Stage A (seeds 0-4): val decides; test shown for transparency only", ""]
    lines += variant_table(STAGE_A_VARIANTS, STAGE_A)
    chosen = choose()
    out: dict[str, Any] = {"chosen": chosen, "rule": "highest mean val accuracy over seeds 0-4, 5 runs each"}
    lines += ["", f"Chosen on val: **{chosen}**.", ""]
    comparisons = (
        [("all seeds 0-9", range(10)), ("held-out seeds 5-9", STAGE_B)]
        if STAGE_B_SEEDS
        else [("seeds 0-4", STAGE_A)]
    )
    for name, seeds in comparisons:
        p = paired(chosen, seeds)
        out[name] = p
        lines += [
            f"## Test, {name} ({len(p['seeds'])} seeds x {RUNS} runs)",
            "",
            f"- {chosen}: {mean_std(p['satm_runs'])}; MTT: {mean_std(p['mtt_runs'])}",
            f"- paired difference of per-seed means ({chosen} - MTT): "
            f"{p['diff_mean']:+.2f} ± {p['diff_std']:.2f};"
            f" {chosen} ahead on {p['wins']}/{len(p['seeds'])} seeds; paired t-test p = {p['t_test_p']:.2g};"
            f" sign test p = {p['sign_test_p']:.2g}",
            "",
        ]
    if STAGE_C_VARIANTS and all(load(v, STAGE_A) for v in STAGE_C_VARIANTS):
        lines += ["## Stage C (seeds 0-4): 80 inner steps", ""]
        lines += variant_table(STAGE_C_VARIANTS, STAGE_A)
        best_satm, best_mtt = best_configs()
        p = paired(best_satm, STAGE_A, reference=best_mtt)
        out["stage C"] = {"best_mtt": best_mtt, "best_satm": best_satm, **p}
        lines += [
            "",
            f"Best on val over every variant of each method: MTT **{best_mtt}**, SATM **{best_satm}**.",
            f"Test, seeds 0-4: {best_satm} {mean_std(p['satm_runs'])} vs "
            f"{best_mtt} {mean_std(p['mtt_runs'])};"
            f" paired difference {p['diff_mean']:+.2f} ± {p['diff_std']:.2f}, ahead on {p['wins']}/5 seeds,"
            f" paired t-test p = {p['t_test_p']:.2g}; sign test p = {p['sign_test_p']:.2g}",
            "",
        ]
        stage_d = [best_mtt, *([horizon_mate(best_satm)] if horizon_mate(best_satm) != best_mtt else [])]
        for reference in stage_d:
            for name, seeds in (("held-out seeds 5-9", STAGE_B), ("all seeds 0-9", range(10))):
                p = paired(best_satm, seeds, reference=reference)
                if len(p["seeds"]) < len(seeds):
                    continue
                out[f"stage D: {best_satm} vs {reference}, {name}"] = p
                lines += [
                    f"## Stage D: {best_satm} vs {reference}, test, {name}",
                    "",
                    f"- {best_satm}: {mean_std(p['satm_runs'])}; {reference}: {mean_std(p['mtt_runs'])}",
                    f"- paired difference of per-seed means: {p['diff_mean']:+.2f} ± {p['diff_std']:.2f};"
                    f" ahead on {p['wins']}/{len(p['seeds'])} seeds; paired t-test p = {p['t_test_p']:.2g};"
                    f" sign test p = {p['sign_test_p']:.2g}",
                    "",
                ]
    extra = [v for v in VARIANTS if v not in (*STAGE_A_VARIANTS, *STAGE_C_VARIANTS) and load(v, range(10))]
    if extra:
        seeds = range(max(s for v in extra for s in load(v, range(10))) + 1)
        lines += ["## Diagnostics (run by hand on a few seeds; no choice depends on them)", ""]
        lines += variant_table(
            ["mtt", *extra], seeds, only=sorted({s for v in extra for s in load(v, seeds)})
        )
        lines += [""]
    (HERE / "summary.md").write_text("\n".join(lines) + "\n")
    (HERE / "summary.json").write_text(json.dumps(out, indent=2) + "\n")
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["run", "summary", "condense", "evaluate"])
    ap.add_argument("variant", nargs="?")
    ap.add_argument("seed", nargs="?", type=int)
    ap.add_argument("--jobs", type=int, default=2, help="local worker processes")
    ap.add_argument("--executor", default="local", help="local or ray (satm_cl.execution)")
    ap.add_argument("--ray-address", default=None, help="HEAD_IP:PORT of a Ray cluster [default: local Ray]")
    ap.add_argument("--dataset", default=None, help="dataset with an IPC 1 preset [default: digits]")
    args = ap.parse_args()
    if args.dataset is not None and args.dataset != DATASET:  # re-run with the dataset fixed for every job
        env = {**os.environ, "SATM_STUDY_DATASET": args.dataset}
        raise SystemExit(subprocess.call([sys.executable, *sys.argv], env=env))
    if args.what == "condense":
        job_condense(args.variant, args.seed)
    elif args.what == "evaluate":
        job_evaluate(args.variant, args.seed)
    elif args.what == "run":
        from satm_cl.execution import ExecConfig

        grid = ExecConfig(executor=args.executor, jobs=args.jobs, ray_address=args.ray_address, threads=1)
        prepare_experts()
        # stage A, seed-major so early seeds finish first for every variant
        run_all([(v, s) for s in STAGE_A for v in STAGE_A_VARIANTS], grid)
        chosen = choose()
        print(f"chosen on val: {chosen}", flush=True)
        run_all([(v, s) for s in STAGE_B_SEEDS for v in ("mtt", chosen)], grid)
        if STAGE_C_VARIANTS:
            run_all([(v, s) for s in STAGE_A for v in STAGE_C_VARIANTS], grid)
            best_satm, best_mtt = best_configs()
            stage_d = dict.fromkeys((best_satm, best_mtt, horizon_mate(best_satm)))
            run_all([(v, s) for s in STAGE_B for v in stage_d], grid)
        summarize()
    else:
        summarize()


if __name__ == "__main__":
    main()
