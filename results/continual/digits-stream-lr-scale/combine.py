"""Merge this study's records (image LR scaled, `lr_img_scale: images`) with the unscaled records of
results/continual/digits-stream-mem-real1 (same settings, seeds and class orders): this study's memories get
the suffix `+scaled`, so the paired script compares each with its unscaled self and the baselines.
Usage: python combine.py SCALED.jsonl UNSCALED.jsonl OUT.jsonl"""

from __future__ import annotations

import json
import sys
from pathlib import Path

if len(sys.argv) != 4:
    sys.exit(__doc__)
scaled, unscaled, out = (Path(a) for a in sys.argv[1:])
lines = [json.loads(line) for line in unscaled.read_text().splitlines()]
for line in scaled.read_text().splitlines():
    rec = json.loads(line)
    lines.append({**rec, "method": f"{rec['method']}+scaled"})
out.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in lines))
