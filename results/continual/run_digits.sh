#!/usr/bin/env bash
# digits, 5 class-incremental steps, IPC 1, 3 class orders, the paper's retrain protocol, every memory
# at the same budget (10 slots). SATM/MTT memories are the seed-0 artifacts of results/digits.
set -euo pipefail
cd "$(dirname "$0")/../.."
R=results/continual/digits
A=results/digits/artifacts
mkdir -p $R/memories
for m in satm mtt; do  # the runner looks for condensed memories here
  [ -e $R/memories/digits-ipc1-$m ] || cp -r $A/digits-ipc1-$m-s0 $R/memories/digits-ipc1-$m
done
time satm-cl evaluate --suite continual --dataset digits --steps 5 --ipc 1 --orders 3 \
  --memories satm,mtt,random,herding,reservoir,class_balanced,av_herding,gdumb --out $R
satm-cl report $R/records.jsonl --out $R/report
