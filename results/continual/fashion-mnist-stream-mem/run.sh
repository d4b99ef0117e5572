#!/usr/bin/env bash
# Fashion-MNIST, 5 class-incremental steps, IPC 10, 3 class orders, retrain 300 epochs: memory-conditioned stream
# SATM (`satm-stream-mem`) against stream SATM, offline SATM, herding and reservoir, at the settings of
# results/continual/fashion-mnist-stream (its condense.json: the fashion-mnist-ipc10 preset of 2026-11-25).
# Protocol and hypotheses: README.md (written before the run). The sets of fashion-mnist-stream are copied in
# first (images only), so only the conditioned sets are new: 4 per class order, each with experts on the
# experience plus the memory at a class-balanced share (at step k about k times a pair's expert time).
# Estimated cost on one thread of the 2-core AVX2 machine: about 6.5 h per class order (experts about 4.7 h,
# condensation about 1.8 h). Resumable at the level of one expert and 25 condensation iterations: rerun it.
set -euo pipefail
cd "$(dirname "$0")/../../.."
R=results/continual/fashion-mnist-stream-mem
S=results/continual/fashion-mnist-stream
SATM=${SATM:-satm-cl}
PY=${PY:-python}
DATA=${DATA_DIR:-/usr/share/datasets/fashion-mnist}
export OMP_NUM_THREADS=1
mkdir -p $R/memories
cp -rn $S/memories/. $R/memories/ || true  # some cp versions exit 1 when -n skips files
$SATM evaluate --suite continual --dataset fashion-mnist --ipc 10 --steps 5 --orders 3 --protocol retrain \
  --epochs 300 --memories satm-stream-mem,satm-stream,satm,herding,reservoir --data-dir "$DATA" \
  --condense-config $S/condense.json --memory-dir $R/memories --out $R --jobs 2 --threads 1
$SATM report $R/records.jsonl --out $R/report
$PY results/continual/paired.py $R/records.jsonl satm-stream-mem > $R/paired.md
