#!/usr/bin/env bash
# digits, 10 class-incremental steps of ONE class, IPC 10, 3 class orders, retrain 100 epochs: the
# memory-conditioned stream SATM (`satm-stream-mem`; plain stream memories cannot run one class per step)
# against offline SATM, herding, reservoir and random. Settings of results/continual/digits-stream
# (condense.json: 60 iterations, 4 experts, no validation). Protocol: README.md (written before the run).
set -euo pipefail
cd "$(dirname "$0")/../../.."
R=results/continual/digits-10steps-mem
SATM=${SATM:-satm-cl}
PY=${PY:-python}
export OMP_NUM_THREADS=1
$SATM evaluate --suite continual --dataset digits --steps 10 --orders 3 --ipc 10 --protocol retrain --epochs 100 \
  --memories satm-stream-mem,satm,herding,reservoir,random --condense-config $R/condense.json \
  --memory-dir $R/memories --out $R
$SATM report $R/records.jsonl --out $R/report
$PY results/continual/paired.py $R/records.jsonl satm-stream-mem > $R/paired.md
