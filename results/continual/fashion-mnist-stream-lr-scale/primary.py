"""The study's primary test (README, fixed before the run): satm-stream+scaled minus satm-stream, final
average accuracy after the last step, one difference per (IPC, class order) over the combined records given,
two-sided paired t-test; prints the differences, mean, t-based 95 % interval, wins, p and the minimum
detectable effect at 80 % power.
Usage: python primary.py COMBINED.jsonl [COMBINED.jsonl ...]"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from scipy import stats

from satm_cl.report.paired import interval_and_mde

if len(sys.argv) < 2:
    sys.exit(__doc__)
diffs: list[float] = []
for path in sys.argv[1:]:
    records = [json.loads(line) for line in Path(path).read_text().splitlines()]
    steps = max(r["step"] for r in records)
    final = {(r["method"], r["seed"]): r["value"] for r in records
             if r["metric"] == "avg_accuracy" and r["step"] == steps}
    for (method, seed), value in sorted(final.items()):
        if method == "satm-stream+scaled" and ("satm-stream", seed) in final:
            ipc = records[0]["ipc"]
            d = value - final[("satm-stream", seed)]
            diffs.append(d)
            print(f"- IPC {ipc}, order {seed}: {value:.1f} − {final[('satm-stream', seed)]:.1f} = {d:+.1f}")
n = len(diffs)
if n < 2:
    sys.exit(f"only {n} paired difference(s): the runs are not finished")
mean, sd = statistics.fmean(diffs), statistics.stdev(diffs)
low, high, mde = interval_and_mde(mean, sd, n)
p = stats.ttest_1samp(diffs, 0.0).pvalue
wins = sum(d > 0 for d in diffs)
print(f"\n**{mean:+.1f} points, 95 % interval [{low:+.1f}, {high:+.1f}], {wins}/{n} "
      f"wins, paired t p = {p:.2g}** (MDE at 80 % power {mde:.1f})")
