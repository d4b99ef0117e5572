#!/usr/bin/env bash
# digits, 5 class-incremental steps, 5 class orders: results/continual/digits-memory-size again with the two
# Avalanche defaults found there controlled: every strategy clears SGD momentum at each experience
# (--reset-optimizer), and Naive + ReplayPlugin replays exactly 20 memory images per mini-batch for every memory
# (--replay-batch 20; 20 divides every memory size met here). ER-ACE and DER keep their fixed replay batches.
# The memories are digits-memory-size's committed sets (--memory-dir there: nothing is condensed anew).
# Protocol: README.md (written before the run). Stages: the IPCs to run (default 10 20 50), then `report`.
# Resumable: rerun it.
set -euo pipefail
cd "$(dirname "$0")/../../.."
R=results/continual/digits-controlled-replay
SRC=results/continual/digits-memory-size
SATM=${SATM:-satm-cl}
PY=${PY:-python}
export OMP_NUM_THREADS=1
M=satm,satm-stream-mem-real1,herding,reservoir,random
STAGES=${*:-10 20 50 report}
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
    extra=(--reset-optimizer)
    [ "$p" = naive ] && extra+=(--replay-batch 20)
    $SATM evaluate --suite continual --dataset digits --steps 5 --orders 5 --memories $M \
      --condense-config $SRC/condense.json --ipc $stage --protocol $p --epochs 5 --memory-dir $SRC/memories \
      --out $R/ipc$stage-$p "${extra[@]}" --jobs 2 --threads 1
  done
done
