#!/usr/bin/env bash
# digits, 5 class-incremental steps, 5 class orders: `satm-stream-mem-real1` (memory-conditioned stream SATM whose
# first experience keeps its starting real images) against `satm-stream-mem` and the real-image buffers, at
# exactly the settings of results/continual/digits-stream-mem (its condense.json, retrain 100 epochs, the same
# 5 class orders). Protocol and hypotheses: README.md (written before the run). The records of the other
# memories are copied from digits-stream-mem first (same settings and seeds, so the same bytes a rerun would
# give): only the new memory is run. Resumable: rerun it.
set -euo pipefail
cd "$(dirname "$0")/../../.."
R=results/continual/digits-stream-mem-real1
S=results/continual/digits-stream-mem
SATM=${SATM:-satm-cl}
PY=${PY:-python}
export OMP_NUM_THREADS=1
M=satm-stream-mem-real1,satm-stream-mem,satm-stream,satm,herding,reservoir,random
for ipc in 10 1; do
  mkdir -p $R/ipc$ipc-retrain
  [ -f $R/ipc$ipc-retrain/records.jsonl ] || cp $S/ipc$ipc-retrain/records.jsonl $R/ipc$ipc-retrain/
  $SATM evaluate --suite continual --dataset digits --steps 5 --orders 5 --memories $M \
    --condense-config $R/condense.json --ipc $ipc --protocol retrain --epochs 100 --memory-dir $R/memories \
    --out $R/ipc$ipc-retrain --jobs 2 --threads 1
done
$SATM report $R/ipc*/records.jsonl --out $R/report
for d in ipc10-retrain ipc1-retrain; do
  echo "## $d"
  $PY results/continual/paired.py $R/$d/records.jsonl satm-stream-mem-real1
done > $R/paired.md
