"""Paired comparisons: one method against each other method on the same evaluation units.

Seeds are the largest source of variance in condensation (the initial real images, the expert draws),
so comparing two methods' pooled mean ± std hides what a paired design shows. A *unit* is one set
evaluated under one base seed (`config.base_seed`, which `satm-cl reproduce` and the results scripts tie
to the condensation / selection seed; continual records: the class-order `seed`); its value is the mean
over the unit's runs. Two methods are paired on units that share every other group key.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
from scipy import stats

from satm_cl.report.tables import _group_value, _is_missing, with_continual_keys

# What must match for two records to be compared (the method is what differs).
PAIR_KEYS = ("stage", "dataset", "ipc", "arch", "metric", "test_dataset", "step", "protocol", "steps",
             "lr_protocol", "epochs")
# Higher-is-better metrics that get paired; continual rows are paired at their last step only.
PAIRED_METRICS = ("test_accuracy", "avg_accuracy")
COLUMNS = (
    *PAIR_KEYS,
    "method",
    "other",
    "n",
    "diff_mean",
    "diff_std",
    "wins",
    "losses",
    "t_test_p",
    "sign_test_p",
    "ci_low",
    "ci_high",
    "mde",
)


def interval_and_mde(diff_mean: float, diff_std: float, n: int) -> tuple[float, float, float]:
    """(low, high, mde): the two-sided 95 % t-interval of a mean paired difference, and the minimum
    detectable effect, the smallest true mean difference a two-sided paired t-test at 5 % finds with 80 %
    power at this n and sd of the differences (t approximation: (t_0.975 + t_0.8) * sd / sqrt(n)).

    NaN for fewer than 2 pairs."""
    if n < 2 or math.isnan(diff_std):
        return float("nan"), float("nan"), float("nan")
    se = diff_std / math.sqrt(n)
    crit = float(stats.t.ppf(0.975, n - 1))
    return diff_mean - crit * se, diff_mean + crit * se, (crit + float(stats.t.ppf(0.8, n - 1))) * se


def paired_stats(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """Per-unit differences a - b: mean, sample std, wins / losses, paired t-test and exact sign-test p,
    and the 95 % interval and minimum detectable effect of `interval_and_mde`.

    The p-values are two-sided; NaN where undefined (fewer than 2 pairs, or all differences equal)."""
    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length: {len(a)} vs {len(b)}")
    diff = [x - y for x, y in zip(a, b, strict=True)]
    n = len(diff)
    wins, losses = sum(d > 0 for d in diff), sum(d < 0 for d in diff)
    t_p = float("nan")
    if n > 1 and statistics.pstdev(diff) > 0:
        t_p = float(stats.ttest_rel(a, b).pvalue)
    sign_p = float(stats.binomtest(wins, wins + losses).pvalue) if wins + losses else float("nan")
    mean = statistics.fmean(diff) if diff else float("nan")
    std = statistics.stdev(diff) if n > 1 else float("nan")
    low, high, mde = interval_and_mde(mean, std, n)
    return {
        "n": n,
        "diff_mean": mean,
        "diff_std": std,
        "wins": wins,
        "losses": losses,
        "t_test_p": t_p,
        "sign_test_p": sign_p,
        "ci_low": low,
        "ci_high": high,
        "mde": mde,
    }


def _unit(rec: Mapping[str, Any]) -> Any:
    config = rec.get("config")
    return config.get("base_seed", rec.get("seed")) if isinstance(config, dict) else rec.get("seed")


def unit_means(records: Iterable[Mapping[str, Any]]) -> dict[tuple[Any, ...], dict[str, dict[Any, float]]]:
    """{pair key: {method: {unit: mean value over the unit's runs}}} for the paired metrics."""
    kept = [
        r
        for r in map(with_continual_keys, records)
        if r.get("metric") in PAIRED_METRICS
        and _is_missing(r.get("eval_step"))
        and not _is_missing(r.get("value"))
    ]
    last: dict[tuple[Any, ...], Any] = {}  # continual: only the final step of each run kind (`_scope`)
    for r in kept:
        if not _is_missing(r.get("step")):
            last[_scope(r)] = max(last.get(_scope(r), r["step"]), r["step"])
    runs: dict[tuple[Any, ...], dict[str, dict[Any, list[float]]]] = {}
    for r in kept:
        if not _is_missing(r.get("step")) and r["step"] != last[_scope(r)]:
            continue
        # missing keys count as None, whether absent or NaN (as `tables.summarise` groups them)
        key = tuple(None if _is_missing(_group_value(r, k)) else _group_value(r, k) for k in PAIR_KEYS)
        runs.setdefault(key, {}).setdefault(str(r["method"]), {}).setdefault(_unit(r), []).append(
            float(r["value"])
        )
    return {
        key: {m: {u: statistics.fmean(v) for u, v in units.items()} for m, units in methods.items()}
        for key, methods in runs.items()
    }


def _scope(rec: Mapping[str, Any]) -> tuple[Any, ...]:
    """What shares a final step: one dataset, IPC, protocol and number of steps."""
    return (rec.get("stage"), rec.get("dataset"), rec.get("ipc"), rec.get("protocol"), rec.get("steps"))


def paired_table(
    records: Iterable[Mapping[str, Any]], method: str = "satm", min_pairs: int = 2
) -> pd.DataFrame:
    """`method` minus each other method, per pair key, over the units both have (>= `min_pairs`)."""
    rows = []
    for key, methods in unit_means(records).items():
        if method not in methods:
            continue
        mine = methods[method]
        for other, theirs in sorted(methods.items()):
            common = sorted(set(mine) & set(theirs), key=str)
            if other == method or len(common) < min_pairs:
                continue
            s = paired_stats([mine[u] for u in common], [theirs[u] for u in common])
            rows.append({**dict(zip(PAIR_KEYS, key, strict=True)), "method": method, "other": other, **s})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _p(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.2g}"


def paired_markdown(table: pd.DataFrame) -> str:
    """The paired table as Markdown: one row per (setting, other method)."""
    head = [
        "stage",
        "dataset",
        "IPC",
        "arch",
        "test on",
        "vs",
        "units",
        "difference",
        "wins",
        "t-test p",
        "sign p",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table.itertuples(index=False):
        test_on = r.test_dataset if isinstance(r.test_dataset, str) else "own"
        arch = f"{r.arch} · {r.protocol}" if isinstance(r.protocol, str) else r.arch
        arch = arch if _is_missing(r.steps) else f"{arch} · {int(r.steps)} steps"
        lines.append(
            f"| {r.stage} | {r.dataset} | {r.ipc} | {arch} | {test_on} | {r.other} | {r.n} | "
            f"{r.diff_mean:+.2f} ± {r.diff_std:.2f} | {r.wins}/{r.n} | {_p(r.t_test_p)} | "
            f"{_p(r.sign_test_p)} |"
        )
    return "\n".join(lines)
