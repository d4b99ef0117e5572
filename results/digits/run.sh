#!/usr/bin/env bash
# Reproduces results/digits/ on a CPU: condensed sets (SATM, MTT; IPC 1 with 3 seeds, IPC 10 with
# 1 seed), real-subset baselines, in-domain for all, cross-arch + ood for IPC 1, then the report.
# Every step resumes: rerunning skips what is done. Set JOBS=1 to run sequentially.
set -euo pipefail
cd "$(dirname "$0")/../.."
R=results/digits
A=$R/artifacts
export OMP_NUM_THREADS=1   # two single-thread jobs at a time use both cores better than one 2-thread job
JOBS=${JOBS:-2}
par() { if [ "$JOBS" -gt 1 ]; then "$@" & else "$@"; fi; }

# 1. condense (experts are trained and cached on first use)
satm-cl experts --dataset digits
for s in 0 1 2; do
  # SATM IPC 1 keeps the settings it was made with (N 20, rho 0.5), from before the study in
  # results/digits-satm-vs-mtt moved the digits-ipc1 SATM preset to N 80, rho 0.1
  par satm-cl condense --ipc 1 --method satm --seed $s --config $R/satm-ipc1-preset-before-study.json \
    --out $A/digits-ipc1-satm-s$s --resume
  satm-cl condense --ipc 1 --method mtt --seed $s --out $A/digits-ipc1-mtt-s$s --resume
  wait
done
par satm-cl condense --ipc 10 --method satm --out $A/digits-ipc10-satm-s0 --resume
satm-cl condense --ipc 10 --method mtt --out $A/digits-ipc10-mtt-s0 --resume
wait

# 2. in-domain: 3 sets per method (condensation / selection seeds 0, 10, 20) x 5 training runs
for s in 0 1 2; do
  for m in satm mtt; do
    par satm-cl evaluate --synthetic $A/digits-ipc1-$m-s$s --suite in-domain --runs 5 --seed $((10 * s)) --out $R
  done
  wait
  for b in random herding kcenter; do
    par satm-cl evaluate --baseline $b --dataset digits --ipc 1 --suite in-domain --runs 5 --seed $((10 * s)) --out $R
  done
  wait
  for b in random herding kcenter; do
    par satm-cl evaluate --baseline $b --dataset digits --ipc 10 --suite in-domain --runs 5 --seed $((10 * s)) --out $R
  done
  wait
done
for m in satm mtt; do
  par satm-cl evaluate --synthetic $A/digits-ipc10-$m-s0 --suite in-domain --runs 5 --out $R
done
wait
satm-cl evaluate --baseline full --dataset digits --suite in-domain --runs 5 --out $R

# 3. cross-architecture and out-of-domain (digits -> mnist5k at 8x8) for the IPC 1 sets of seed 0;
#    the real baselines get the out-of-domain suite (ConvNet only): cross-arch runs of ResNet18/VGG11
#    on 2 shared cores cost ~50 s each, so baselines' cross-arch rows were not run here.
par satm-cl evaluate --synthetic $A/digits-ipc1-satm-s0 --suite cross-arch --suite ood --runs 3 --out $R
satm-cl evaluate --synthetic $A/digits-ipc1-mtt-s0 --suite cross-arch --suite ood --runs 3 --out $R
wait
for b in random herding; do
  satm-cl evaluate --baseline $b --dataset digits --ipc 1 --suite ood --runs 3 --out $R
done
satm-cl evaluate --baseline full --dataset digits --suite ood --runs 3 --out $R

# 4. report
satm-cl report $R/records.jsonl --out $R/report \
  --artifact $A/digits-ipc1-satm-s0 --artifact $A/digits-ipc1-mtt-s0 \
  --artifact $A/digits-ipc10-satm-s0 --artifact $A/digits-ipc10-mtt-s0
