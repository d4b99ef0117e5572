"""Merge an image-LR-scaling study's records (`lr_img_scale: images`) with the unscaled records of the run it
repeats (same settings, seeds and class orders; e.g. digits-stream-lr-scale with digits-stream-mem-real1): the
scaled memories get the suffix `+scaled`, so paired.py compares each with its unscaled self and the baselines.
Usage: python results/continual/combine_scaled.py SCALED.jsonl UNSCALED.jsonl OUT.jsonl"""

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
