#!/usr/bin/env bash
# Fashion-MNIST, the full continual protocol (issue 12). Resumable: every step skips finished work, so
# rerun the same script after an interruption. Extra flags for every `evaluate` (e.g. an executor and job
# count) go in $EXTRA; the CLI in $SATM (default: satm-cl).
#
#  A. retrain protocol (the paper's), 300 epochs per step, 3 class orders, every memory:
#     5 steps x IPC 10 and IPC 1, offline (satm, mtt: condensed once with all classes visible) and stream
#     (satm-stream, mtt-stream: experts + condensation on each experience's data only; satm-stream-mem: the
#     same conditioned on the memory so far) side by side;
#     10 steps (one class each) x IPC 10 without the plain stream memories (one class per experience leaves
#     their experts nothing to learn; the runner refuses it) but with satm-stream-mem (memory-conditioned:
#     from the second experience on its experts learn the new class against the memory's).
#  B. memory-size sweep: 5 steps, IPC 1, 5, 10 (IPC 5 borrows the nearest preset, IPC overridden).
#  C. Avalanche strategies where replay matters: Naive+replay, ER-ACE, DER (and LwF) at IPC 10, 20, 50
#     (100-500 images) with satm-stream-mem, satm-stream, satm, herding, reservoir and random at the same size.
#  D. One report over everything.
# Presets: IPC 10, 20 and 50 use the whitened fashion-mnist-ipc10/50 presets (ZCA; stream-mode memories fit
# it on the first experience only, docs/continual.md; bf16 forward passes, 26 experts and 700 iterations per set
# since candidate H: per pair about 1.5x the condensation time of 300 fp32 iterations and 3x the expert time of 6
# fp32 experts, an estimate), IPC 1 and 5 the
# unwhitened ipc1 preset.
# Memories are shared between all runs through --memory-dir (offline sets per IPC, stream sets per sorted
# class pair, expert stores in the cache per class pair), so each class pair is condensed once per IPC.
set -euo pipefail
cd "$(dirname "$0")/../../.."
R=results/continual/fashion-mnist
SATM=${SATM:-satm-cl}
EXTRA=${EXTRA:-}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
MEM=$R/memories
ALL=satm-stream-mem,satm-stream,mtt-stream,satm,mtt,random,herding,reservoir,class_balanced,av_herding,gdumb
ONE_CLASS=satm-stream-mem,satm,mtt,random,herding,reservoir,class_balanced,av_herding,gdumb
STRAT=satm-stream-mem,satm-stream,satm,herding,reservoir,random
run() {  # run OUT ARGS...: one continual evaluation into $R/runs/OUT
  local out=$1; shift
  $SATM evaluate --suite continual --dataset fashion-mnist --orders 3 --memory-dir $MEM \
    --out $R/runs/$out "$@" $EXTRA
}
# A + B
for ipc in 10 1 5; do
  run 5steps-ipc$ipc-retrain --steps 5 --ipc $ipc --protocol retrain --epochs 300 --memories $ALL
done
run 10steps-ipc10-retrain --steps 10 --ipc 10 --protocol retrain --epochs 300 --memories $ONE_CLASS
# C
for ipc in 10 20 50; do
  for p in naive er_ace der lwf; do
    run 5steps-ipc$ipc-$p --steps 5 --ipc $ipc --protocol $p --memories $STRAT
  done
done
# D
$SATM report $R/runs/*/records.jsonl --out $R/report-full
