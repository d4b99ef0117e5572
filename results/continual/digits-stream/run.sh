#!/usr/bin/env bash
# digits, 5 class-incremental steps, 2 class orders: stream-condensed SATM (experts and condensation on each
# experience's data only) vs offline SATM (condensed once with all classes visible) vs herding (offline:
# features of a net trained on all classes), reservoir and random. Small scale for a CPU demonstration:
# condensation at 60 iterations with 4 experts and no validation (condense.json, the same for stream and
# offline), the retrain protocol at 100 epochs per step (IPC 1 and 10: the memory-size sweep), and
# Avalanche's Naive+replay, ER-ACE and DER at IPC 10 with 5 epochs per experience. Resumable: rerun it.
set -euo pipefail
cd "$(dirname "$0")/../../.."
R=results/continual/digits-stream
SATM=${SATM:-satm-cl}
export OMP_NUM_THREADS=1
M=satm-stream,satm,herding,reservoir,random
C="--suite continual --dataset digits --steps 5 --orders 2 --memories $M --condense-config $R/condense.json"
for ipc in 10 1; do
  $SATM evaluate $C --ipc $ipc --protocol retrain --epochs 100 --memory-dir $R/memories --out $R/ipc$ipc-retrain
done
for p in naive er_ace der; do
  $SATM evaluate $C --ipc 10 --protocol $p --epochs 5 --memory-dir $R/memories --out $R/ipc10-$p
done
$SATM report $R/ipc*/records.jsonl --out $R/report
