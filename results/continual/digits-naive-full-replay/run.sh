#!/usr/bin/env bash
# digits, 5 class-incremental steps, 5 class orders, IPC 32 (320 slots): Naive + ReplayPlugin with equal AND full
# replay per step: the replay batch is the mini-batch (64), and 64 divides every per-class memory size met here
# (64, 128, 192, 256), so every memory replays 64 images at every step (reservoir: 35-64 in experience 2 only,
# while it holds the 227 images of experience 1). SGD momentum reset at each experience. Condensation as
# results/continual/digits-memory-size (condense.json). Protocol: README.md (written before the run).
# Resumable: rerun it. Stages: run, report (default both).
set -euo pipefail
cd "$(dirname "$0")/../../.."
R=results/continual/digits-naive-full-replay
SATM=${SATM:-satm-cl}
PY=${PY:-python}
export OMP_NUM_THREADS=1
STAGES=${*:-run report}
for stage in $STAGES; do
  case $stage in
    run)
      $SATM evaluate --suite continual --dataset digits --steps 5 --orders 5 --ipc 32 --protocol naive --epochs 5 \
        --memories satm,satm-stream-mem-real1,herding,reservoir,random --condense-config $R/condense.json \
        --memory-dir $R/memories --out $R/ipc32-naive --reset-optimizer --replay-batch 64 --jobs 2 --threads 1 ;;
    report)
      $SATM report $R/ipc32-naive/records.jsonl --out $R/report
      { for ref in satm satm-stream-mem-real1; do $PY results/continual/paired.py $R/ipc32-naive/records.jsonl $ref; echo; done; } > $R/paired.md ;;
    *) echo "unknown stage $stage (run, report)" >&2; exit 2 ;;
  esac
done
