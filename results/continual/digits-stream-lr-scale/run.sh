#!/usr/bin/env bash
# digits, 5 class-incremental steps, 5 class orders: conditioned stream memories with the image LR scaled by
# the images the student trains on (`lr_img_scale: images`) against the same memories unscaled, at exactly
# the settings of results/continual/digits-stream-mem(-real1) (condense.json adds only lr_img_scale). Protocol
# and hypotheses: README.md (written before the run). Only the scaled memories run here; ../combine_scaled.py merges
# their records with digits-stream-mem-real1's (suffix `+scaled`) for the paired tables. Resumable: rerun it.
set -euo pipefail
cd "$(dirname "$0")/../../.."
R=results/continual/digits-stream-lr-scale
U=results/continual/digits-stream-mem-real1
SATM=${SATM:-satm-cl}
PY=${PY:-python}
export OMP_NUM_THREADS=1
for ipc in 1 10; do
  $SATM evaluate --suite continual --dataset digits --steps 5 --orders 5 \
    --memories satm-stream-mem-real1,satm-stream-mem --condense-config $R/condense.json --ipc $ipc \
    --protocol retrain --epochs 100 --memory-dir $R/memories --out $R/ipc$ipc-retrain --jobs 2 --threads 1
  $PY results/continual/combine_scaled.py $R/ipc$ipc-retrain/records.jsonl $U/ipc$ipc-retrain/records.jsonl $R/ipc$ipc-combined.jsonl
done
$SATM report $R/ipc*-combined.jsonl --out $R/report
for ipc in 1 10; do
  for ref in satm-stream-mem-real1+scaled satm-stream-mem+scaled; do
    echo "## IPC $ipc, $ref"
    $PY results/continual/paired.py $R/ipc$ipc-combined.jsonl $ref
  done
done > $R/paired.md
