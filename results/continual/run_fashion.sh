#!/usr/bin/env bash
# fashion-mnist, 5 class-incremental steps, IPC 10, 3 class orders, the paper's retrain protocol.
# The SATM and MTT memories are condensed first (experts trained and cached on first use) into the
# paths the continual runner looks for, so the runner reuses them.
set -euo pipefail
cd "$(dirname "$0")/../.."
R=results/continual/fashion-mnist
export OMP_NUM_THREADS=1
satm-cl experts --dataset fashion-mnist --ipc 10
satm-cl condense --dataset fashion-mnist --ipc 10 --method satm --out $R/memories/fashion-mnist-ipc10-satm --resume &
satm-cl condense --dataset fashion-mnist --ipc 10 --method mtt --out $R/memories/fashion-mnist-ipc10-mtt --resume
wait
satm-cl evaluate --suite continual --dataset fashion-mnist --steps 5 --ipc 10 --orders 3 \
  --memories satm,mtt,random,herding,reservoir,class_balanced,av_herding,gdumb --out $R
satm-cl report $R/records.jsonl --out $R/report \
  --artifact $R/memories/fashion-mnist-ipc10-satm --artifact $R/memories/fashion-mnist-ipc10-mtt
