"""Per class order, the final average accuracy of every memory; then REFERENCE (default satm-stream) minus
each other memory through the report's paired table (`satm_cl.report.paired_table`), with a t-based 95 %
interval and the minimum detectable effect at 80 % power.
Reads one continual records.jsonl; prints markdown.
Usage: python results/continual/paired.py RECORDS.jsonl [REFERENCE_MEMORY]"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from satm_cl.report import paired_table

if len(sys.argv) < 2:
    sys.exit(__doc__)
records = [json.loads(line) for line in Path(sys.argv[1]).read_text().splitlines()]
steps = max(r["step"] for r in records)
final = [r for r in records if r["metric"] == "avg_accuracy" and r["step"] == steps]
by = {(r["method"], r["seed"]): r["value"] for r in final}
methods, orders = sorted({m for m, _ in by}), sorted({s for _, s in by})
print("| memory | " + " | ".join(f"order {s}" for s in orders) + " | mean |")
print("|---|" + "---|" * (len(orders) + 1))
for m in methods:
    vals = [by.get((m, s)) for s in orders]
    mean = statistics.fmean(v for v in vals if v is not None)
    print(f"| {m} | " + " | ".join("–" if v is None else f"{v:.1f}" for v in vals) + f" | {mean:.1f} |")
reference = sys.argv[2] if len(sys.argv) > 2 else "satm-stream"
print(f"\n| {reference} minus | mean (points) | 95 % interval | wins | p (paired t) | MDE (80 % power) |")
print("|---|---|---|---|---|---|")
for r in paired_table(final, reference).itertuples(index=False):
    print(f"| {r.other} | {r.diff_mean:+.1f} | [{r.ci_low:+.1f}, {r.ci_high:+.1f}] | {r.wins}/{r.n} | "
          f"{r.t_test_p:.2g} | {r.mde:.1f} |")
