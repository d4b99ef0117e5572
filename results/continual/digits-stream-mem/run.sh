#!/usr/bin/env bash
# digits, 5 class-incremental steps, 5 class orders: memory-conditioned stream SATM (`satm-stream-mem`: at each
# experience the experts train on its real data plus the memory held by then, the student on the new images
# plus that memory) against stream SATM (`satm-stream`, each experience alone), offline SATM, herding, reservoir
# and random. The settings of results/continual/digits-stream (condense.json: 60 iterations, 4 experts, no
# validation; retrain 100 epochs; strategies 5 epochs), with 5 class orders instead of 2. Protocol and
# hypotheses: README.md (written before the run). Resumable: rerun it.
set -euo pipefail
cd "$(dirname "$0")/../../.."
R=results/continual/digits-stream-mem
SATM=${SATM:-satm-cl}
PY=${PY:-python}
export OMP_NUM_THREADS=1
M=satm-stream-mem,satm-stream,satm,herding,reservoir,random
C="--suite continual --dataset digits --steps 5 --orders 5 --memories $M --condense-config $R/condense.json"
for ipc in 10 1; do
  $SATM evaluate $C --ipc $ipc --protocol retrain --epochs 100 --memory-dir $R/memories --out $R/ipc$ipc-retrain
done
for p in naive er_ace der; do
  $SATM evaluate $C --ipc 10 --protocol $p --epochs 5 --memory-dir $R/memories --out $R/ipc10-$p
done
$SATM report $R/ipc*/records.jsonl --out $R/report
for d in ipc10-retrain ipc1-retrain ipc10-naive ipc10-er_ace ipc10-der; do
  echo "## $d"
  $PY results/continual/paired.py $R/$d/records.jsonl satm-stream-mem
done > $R/paired.md
