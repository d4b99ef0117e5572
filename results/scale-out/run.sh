#!/usr/bin/env bash
# Regenerates results/scale-out/: wall time of the digits experts + evaluation grid under each executor,
# REPS times, modes interleaved:
#   local        --executor local --jobs 1 (in process)
#   local-jobs2  --executor local --jobs 2 (two spawned workers)
#   ray          --executor ray: each command starts (and stops) a local Ray on the 2 CPUs
#   ray-cluster  --executor ray --ray-address: a Ray head started once beforehand (as on a cluster);
#                its start-up time is reported separately
# Usage: results/scale-out/run.sh   [env: PYTHON, REPS (default 2), RUNS (default 10), WORK]
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python}
RAY=$(dirname "$(command -v "$PY")")/ray
HERE=results/scale-out
REPS=${REPS:-2}
RUNS=${RUNS:-10}
WORK=${WORK:-$(mktemp -d /tmp/satm-scale-out.XXXXXX)}
MODES=${MODES:-local local-jobs2 ray ray-cluster}
export OMP_NUM_THREADS=1
TIMES=$HERE/times.csv
echo "rep,mode,experts_s,evaluate_s,total_s,load_before" > "$TIMES"
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
RAYTMP=$(mktemp -d /tmp/satm-ray.XXXXXX)
stop_cluster() {  # end the head this script started (its processes carry RAYTMP or the port), by pid
  $PY - "$RAYTMP" "127.0.0.1:$PORT" <<'PYEOF'
import contextlib, os, sys
import psutil
marks = sys.argv[1:]
found = [p for p in psutil.process_iter(["cmdline"])
         if p.pid != os.getpid() and any(m in " ".join(p.info["cmdline"] or []) for m in marks)]
found += [c for p in list(found) for c in p.children(recursive=True)]
for p in found:
    with contextlib.suppress(psutil.Error):
        p.terminate()
for p in psutil.wait_procs(found, timeout=15)[1]:
    with contextlib.suppress(psutil.Error):
        p.kill()
PYEOF
  rm -rf "$RAYTMP"
}
opts_for() {
  case $1 in
    local) echo "--executor local --jobs 1" ;;
    local-jobs2) echo "--executor local --jobs 2" ;;
    ray) echo "--executor ray" ;;
    ray-cluster) echo "--executor ray --ray-address 127.0.0.1:$PORT" ;;
  esac
}
HEAD_S=""
if [[ " $MODES " == *" ray-cluster "* ]]; then
  trap stop_cluster EXIT
  t0=$(date +%s.%N)
  RAY_AUTH_MODE=disabled "$RAY" start --head --port "$PORT" --node-ip-address 127.0.0.1 --num-cpus 2 \
    --include-dashboard false --temp-dir "$RAYTMP" > "$WORK.head.log" 2>&1
  HEAD_S=$(echo "$(date +%s.%N) - $t0" | bc)
fi
for rep in $(seq 1 "$REPS"); do
  for mode in $MODES; do
    dir=$WORK/$rep/$mode
    rm -rf "$dir"
    mkdir -p "$dir"
    load=$(cut -d' ' -f1 /proc/loadavg)
    t0=$(date +%s.%N)
    # shellcheck disable=SC2046
    RAY_AUTH_MODE=disabled SATM_CL_CACHE=$dir/cache $PY -m satm_cl.cli experts --dataset digits \
      $(opts_for $mode) > "$dir.experts.log" 2>&1
    t1=$(date +%s.%N)
    # shellcheck disable=SC2046
    RAY_AUTH_MODE=disabled $PY -m satm_cl.cli evaluate --baseline random --dataset digits --ipc 1 \
      --suite in-domain --runs "$RUNS" --out "$dir/eval" $(opts_for $mode) > "$dir.evaluate.log" 2>&1
    t2=$(date +%s.%N)
    echo "$rep,$mode,$(echo "$t1 - $t0" | bc),$(echo "$t2 - $t1" | bc),$(echo "$t2 - $t0" | bc),$load" >> "$TIMES"
    tail -1 "$TIMES"
  done
done
PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}" $PY "$HERE/probe.py" "$HERE/probe.json"
$PY "$HERE/summarize.py" "$WORK" "$TIMES" "$HERE/README.md" "$REPS" "$RUNS" "$HEAD_S"
