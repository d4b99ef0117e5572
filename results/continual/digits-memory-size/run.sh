#!/usr/bin/env bash
# digits, 5 class-incremental steps, 5 class orders: what a memory is worth *inside* Avalanche's replay
# strategies as it grows: Naive + ReplayPlugin, ER-ACE and DER (5 epochs per experience) at IPC 10, 20 and 50
# (100, 200, 500 slots), with offline SATM, the conditioned stream memory whose first experience stays real
# (satm-stream-mem-real1), herding, reservoir and random. Condensation at results/continual/digits-stream-mem's
# settings (condense.json: 60 iterations, 4 experts, no validation); its IPC 10 stream sets are copied in and
# reused. Protocol: README.md (written before the run). Stages: the IPCs to run (default 10 20 50), then
# `report`. Resumable: rerun it.
set -euo pipefail
cd "$(dirname "$0")/../../.."
R=results/continual/digits-memory-size
SATM=${SATM:-satm-cl}
PY=${PY:-python}
export OMP_NUM_THREADS=1
M=satm,satm-stream-mem-real1,herding,reservoir,random
STAGES=${*:-10 20 50 report}
mkdir -p $R/memories/stream
cp -n results/continual/digits-stream-mem-real1/memories/stream/digits-ipc10-* -r $R/memories/stream/ 2>/dev/null || true
for stage in $STAGES; do
  if [ "$stage" = report ]; then
    $SATM report $R/ipc*/records.jsonl --out $R/report
    for d in $R/ipc*/; do
      echo "## $(basename $d)"
      for ref in satm satm-stream-mem-real1; do $PY results/continual/paired.py $d/records.jsonl $ref; echo; done
    done > $R/paired.md
    continue
  fi
  for p in naive er_ace der; do
    $SATM evaluate --suite continual --dataset digits --steps 5 --orders 5 --memories $M \
      --condense-config $R/condense.json --ipc $stage --protocol $p --epochs 5 --memory-dir $R/memories \
      --out $R/ipc$stage-$p --jobs 2 --threads 1
  done
done
