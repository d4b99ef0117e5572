#!/usr/bin/env bash
# Fashion-MNIST IPC 10 end to end with the preset (issue 10, item 5): expert trajectories, SATM
# condensation, evaluation (5 train-from-scratch runs on the official test split), each stage timed
# into times.csv; then README.md. Resumable: finished experts and artifacts are reused.
#   usage: bash results/fashion-mnist-e2e/run.sh [experts|condense|evaluate|report|all]  (default all)
#   env: PYTHON (python), DATA_DIR (/usr/share/datasets/fashion-mnist), WORK (cache + artifact,
#        default /tmp/satm-fmnist-e2e; kept out of git)
set -euo pipefail
cd "$(dirname "$0")/../.."
R=results/fashion-mnist-e2e
PY=${PYTHON:-python}
DATA=${DATA_DIR:-/usr/share/datasets/fashion-mnist}
WORK=${WORK:-/tmp/satm-fmnist-e2e}
STAGE=${1:-all}
export SATM_CL_CACHE=$WORK/cache
mkdir -p "$WORK"
[ -f "$R/times.csv" ] || echo "stage,seconds,threads,command" > "$R/times.csv"

timed() { # stage threads command...: run it, append its wall time
  local name=$1 threads=$2
  shift 2
  local t0
  t0=$(date +%s.%N)
  OMP_NUM_THREADS=$threads "$@"
  echo "$name,$(echo "$(date +%s.%N) - $t0" | bc),$threads,\"${*//\"/}\"" >> "$R/times.csv"
}
cli() { echo "$PY -m satm_cl.cli"; }

if [[ $STAGE == experts || $STAGE == all ]]; then
  # two single-thread experts at a time on the 2 cores
  timed experts 1 $(cli) experts --dataset fashion-mnist --ipc 10 --data-dir "$DATA" --jobs 2 --threads 1
fi
if [[ $STAGE == condense || $STAGE == all ]]; then
  timed condense 2 $(cli) condense --dataset fashion-mnist --ipc 10 --data-dir "$DATA" \
    --out "$WORK/artifact" --resume
fi
if [[ $STAGE == evaluate || $STAGE == all ]]; then
  rm -rf "$WORK/eval"
  timed evaluate 1 $(cli) evaluate --synthetic "$WORK/artifact" --suite in-domain --runs 5 \
    --data-dir "$DATA" --out "$WORK/eval" --jobs 2 --threads 1
  cp "$WORK/eval/records.jsonl" "$R/records.jsonl"
  cp "$WORK/artifact/synthetic.json" "$R/synthetic.json"
fi
if [[ $STAGE == report || $STAGE == all ]]; then
  $PY "$R/summarize.py" "$R" "$WORK"
fi
