#!/usr/bin/env bash
# The README's first command: the synthetic forgetting demo (docs/SYNTHETIC.md). Sets up and
# builds if needed, pretrains the suite's small base (reused while inputs/demo/pretrain.ini is
# unchanged), then fine-tunes it on synthetic order 1 with six configs (inputs/demo/<method>.ini,
# two runs at a time, fresh run directories runs/demo/<method>, logs runs/demo/<method>.log) and
# prints one table: diagonal mean, AP, BWT, in-list rate after the last task, wall time.
#
#   scripts/demo.sh [--seeds 1,2,3]   each method once per seed (runs/demo/<method>-s<seed>);
#                                     the table gains a seed column and a mean row per method
# Environment:
#   GORP_DEMO_SET="--set train.max_steps=20 ..."  extra arguments for every `gorp run` (smoke runs)
#   GORP_DEMO_JOBS=N                              runs at a time (default 2)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
# longest first: two at a time, the short runs fill in behind inclora
methods=(inclora seqft gorp_paper gorp_input_activation gorp_input_moment mtl)
usage() { sed -n '8,9p' "$0" | sed 's/^#  //' >&2; exit 64; }
seeds=()
while (($#)); do
  case $1 in
    --seeds) [[ ${2:-} =~ ^[0-9]+(,[0-9]+)*$ ]] || usage; IFS=, read -ra seeds <<<"$2"; shift 2 ;;
    *) usage ;;
  esac
done
read -ra extra <<<"${GORP_DEMO_SET:-}"
jobs_max=${GORP_DEMO_JOBS:-2}

[ -x build/gorp ] || scripts/setup.sh
cmake --build build -j "$(nproc)" >/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
py=build/venv/bin/python
[ -x "$py" ] || py=python3

mkdir -p runs/demo
echo "demo: base model (gorp pretrain inputs/demo/pretrain.ini, about a minute unless cached)"
build/gorp pretrain inputs/demo/pretrain.ini >runs/demo/pretrain.log 2>&1 \
  || { echo "demo: pretraining failed, see runs/demo/pretrain.log" >&2; exit 1; }

# the runs: run directory <method> (the config's seed) or <method>-s<seed>; without --seeds the
# inner loop makes one pass with s = ""
dirs=() run_method=() run_seed=()
for m in "${methods[@]}"; do
  for s in "${seeds[@]:-}"; do dirs+=("$m${s:+-s$s}") run_method+=("$m") run_seed+=("$s"); done
done
# fresh runs: an existing run directory would be resumed from its checkpoints
for d in "${dirs[@]}"; do rm -rf "runs/demo/$d" "runs/demo/$d.log"; done

# one run: its log, and its wall time (two runs share the cores) in <dir>/wall_seconds
run_one() { # method dir seed ("": the config's)
  local method=$1 dir=$2 t0=$EPOCHREALTIME rc=0 seed_set=()
  [ -z "$3" ] || seed_set=(--set "run.seed=$3")
  build/gorp run "inputs/demo/$method.ini" --set "run.out_dir=$here/runs/demo/$dir" \
    "${seed_set[@]}" "${extra[@]}" >"runs/demo/$dir.log" 2>&1 || rc=$?
  mkdir -p "runs/demo/$dir"
  awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f\n", b - a }' \
    >"runs/demo/$dir/wall_seconds"
  return "$rc"
}
declare -A pending=() # pid -> run directory
failed=()
reap() {
  local pid rc=0
  wait -n -p pid "${!pending[@]}" || rc=$?
  local d=${pending[$pid]}
  unset "pending[$pid]"
  if ((rc)); then
    failed+=("$d")
    echo "demo: $d FAILED (exit $rc), see runs/demo/$d.log" >&2
  else
    echo "demo: $d done in $(cat "runs/demo/$d/wall_seconds") s"
  fi
}
# on an early exit (Ctrl-C), stop the runs still going: each gorp, then its subshell
stop_runs() { for p in "${!pending[@]}"; do pkill -P "$p"; kill "$p"; done 2>/dev/null || true; }
trap stop_runs EXIT
for i in "${!dirs[@]}"; do
  while ((${#pending[@]} >= jobs_max)); do reap; done
  echo "demo: started ${dirs[i]} (log runs/demo/${dirs[i]}.log)"
  run_one "${run_method[i]}" "${dirs[i]}" "${run_seed[i]}" &
  pending[$!]=${dirs[i]}
done
while ((${#pending[@]})); do reap; done
if ((${#failed[@]})); then
  for d in "${failed[@]}"; do
    echo "== runs/demo/$d.log (last lines)" >&2
    tail -5 "runs/demo/$d.log" >&2
  done
  echo "demo: ${#failed[@]} run(s) failed: ${failed[*]}" >&2
  exit 1
fi
echo
"$py" postprocess/demo_table.py "${dirs[@]/#/runs/demo/}"
