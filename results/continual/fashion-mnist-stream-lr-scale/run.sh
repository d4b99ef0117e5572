#!/usr/bin/env bash
# Fashion-MNIST, 5 class-incremental steps, 3 class orders: plain stream memories (satm-stream, mtt-stream) with
# the image LR scaled by the images the student trains on (`lr_img_scale: images`, a factor 0.2 for a lone
# class pair) against the same memories unscaled, at exactly the cpu scale's settings of
# results/continual/fashion-mnist (stages a1 and b5: IPC 1 and 5, retrain 300 epochs; condense.json adds only
# lr_img_scale). Protocol and hypotheses: README.md (written before the run). Only the scaled memories run
# here; ../combine_scaled.py merges their records with the cpu scale's (suffix `+scaled`) for the paired
# tables. Resumable: rerun it; finished (memory, order) jobs and made sets are kept.
#   env: SATM (satm-cl), PY (python), DATA_DIR, EXTRA (default `--jobs 2 --threads 1`)
set -euo pipefail
cd "$(dirname "$0")/../../.."
R=results/continual/fashion-mnist-stream-lr-scale
U=results/continual/fashion-mnist/runs/cpu
SATM=${SATM:-satm-cl}
PY=${PY:-python}
EXTRA=${EXTRA:---jobs 2 --threads 1}
export OMP_NUM_THREADS=1
for ipc in 1 5; do
  # shellcheck disable=SC2086
  $SATM evaluate --suite continual --dataset fashion-mnist --steps 5 --orders 3 --ipc $ipc \
    --memories satm-stream,mtt-stream --condense-config $R/condense.json --protocol retrain --epochs 300 \
    --memory-dir $R/memories ${DATA_DIR:+--data-dir "$DATA_DIR"} --out $R/ipc$ipc-retrain $EXTRA
  $PY results/continual/combine_scaled.py $R/ipc$ipc-retrain/records.jsonl \
    $U/5steps-ipc$ipc-retrain/records.jsonl $R/ipc$ipc-combined.jsonl
done
$SATM report $R/ipc*-combined.jsonl --out $R/report
{
  echo "## Primary: satm-stream, IPC 1 and 5 pooled"
  $PY $R/primary.py $R/ipc1-combined.jsonl $R/ipc5-combined.jsonl
  for ipc in 1 5; do
    for ref in satm-stream+scaled mtt-stream+scaled; do
      echo "## IPC $ipc, $ref"
      $PY results/continual/paired.py $R/ipc$ipc-combined.jsonl $ref
    done
  done
} > $R/paired.md
