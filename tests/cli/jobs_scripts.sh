#!/usr/bin/env bash
# The parts of jobs/ that need no Slurm (slow_slurm.sh runs the scripts on a private Slurm):
# every LLaMA-2-7B config of inputs/llama2-7b/ (each method of the comparison, each order, with
# and without yahoo) passes `gorp config` with the method its folder names and the order its name
# names, and no two share a run directory; `gorp plan --hf-config` fits each method (orders 4-6,
# the largest, too) in the memory jobs/llama2_7b.sbatch asks per rank; jobs/llama2_7b_gpu.sbatch
# asks a GPU per task, a GPU binding and run.backend=cuda and is otherwise that script (array,
# configs, layout, memory; its configs resolve to the same run directories); `gorp_launch.sh --list`
# names run directories after config, method and seed, so that two methods or two seeds of one
# config never share one; and the site file hook (jobs/load_site.sh) sources GORP_SITE_FILE or
# jobs/site.sh and stops on a missing or failing one. docs/SLURM.md.
. "$(dirname "$0")/lib.bash"
: "${GORP_SRC:?GORP_SRC must name the source tree}"
dir=$GORP_SRC/inputs/llama2-7b
unset GORP_RUN_ROOT GORP_SITE_FILE GORP_CONFIGS SLURM_ARRAY_TASK_ID
# about 80 gorp calls: without Open MPI's singleton daemon each starts in half the time
export OMPI_MCA_ess_singleton_isolated=1

# --- the 7B configs --------------------------------------------------------------------------
# layout SCRIPT: sets mem_g, per_node and tp to the memory (GiB per node) and ranks per node that
# an array script asks for and the tp of its exec line; fails the check when one is missing
layout() {
  mem_g=$(sed -n 's/^#SBATCH --mem=\([0-9]*\)G$/\1/p' "$1")
  per_node=$(sed -n 's/^#SBATCH --ntasks-per-node=\([0-9]*\)$/\1/p' "$1")
  tp=$(grep '^exec ' "$1" | grep -o 'parallel.tp=[0-9]*' | cut -d= -f2)
  [ -n "$mem_g" ] && [ -n "$per_node" ] && [ -n "$tp" ] && return
  fail "jobs/$(basename "$1"): no --mem=NG, --ntasks-per-node or parallel.tp found"
  return 1
}
# the plans are made at jobs/llama2_7b.sbatch's tp; fits (below) sets them against a script's memory
layout "$GORP_SRC/jobs/llama2_7b.sbatch"
plan_tp=$tp
declare -A seen total
n=0 planned=0
for cfg in "$dir"/*.ini "$dir"/*/*.ini; do
  name=${cfg#"$dir"/}
  base=$(basename "$name" .ini)
  case $name in
    */*) want_method=${name%%/*} ;;
    order*) want_method=gorp ;;
    common.ini) want_method=seqft ;; # run.method's default: common.ini names no method
    *) want_method=$base ;;
  esac
  want_order=order1
  [[ $base != order* ]] || want_order=${base%_noyahoo}
  if ! "$GORP" config "$cfg" >"$work/c.txt" 2>&1; then
    fail "$name: gorp config refused it:"; sed 's/^/    /' "$work/c.txt"
    continue
  fi
  method=$(sed -n '/^\[run\]/,/^\[/s/^method = //p' "$work/c.txt")
  order=$(sed -n 's/^order = //p' "$work/c.txt")
  tasks=$(sed -n 's/^tasks = //p' "$work/c.txt")
  out=$(sed -n 's/^out_dir = //p' "$work/c.txt")
  yahoo_ok=1
  if [[ $base = *_noyahoo ]]; then
    [[ $tasks != *yahoo* ]] || yahoo_ok=0
  else
    [[ $tasks = *yahoo* ]] || yahoo_ok=0
  fi
  if [ "$method" = "$want_method" ] && [ "$order" = "$want_order" ] && [ "$yahoo_ok" = 1 ] \
    && [ -z "${seen[$out]:-}" ]; then
    n=$((n + 1))
  else
    fail "$name: method '$method' (want $want_method), order '$order' (want $want_order)," \
      "tasks '$tasks', out_dir $out${seen[$out]:+ (also the out_dir of ${seen[$out]})}"
  fi
  seen[$out]=$name
  # the plan from LLaMA-2-7B's config.json (the model file is not here) at the script's layout:
  # each method file, and the 15-task orders (the most LoRA pairs and bases) of each method
  # (common.ini alone is seqft, not a run of the comparison)
  [[ $base = order[456] || ( $name != */* && $base != order* && $base != common ) ]] || continue
  if "$GORP" plan "$cfg" --hf-config "$dir/config.json" --tp "$plan_tp" >"$work/p.txt" 2>&1; then
    total[$name]=$(awk '/^total per rank/ { print $4 }' "$work/p.txt")
    planned=$((planned + 1))
  else
    fail "$name: gorp plan --hf-config refused it:"; sed 's/^/    /' "$work/p.txt"
  fi
done
[ "$n" -eq 79 ] && pass "79 LLaMA-2-7B configs: gorp config accepts each, each has its folder's" \
  "method and its name's order (yahoo only where the name allows) and its own run directory" \
  || fail "$n of the 79 7B configs as expected"
# fits SCRIPT: every plan (made at tp $plan_tp) within the memory per rank SCRIPT asks at that tp
fits() {
  local name fit=0
  layout "$1" || return
  [ "$tp" = "$plan_tp" ] || { fail "jobs/$(basename "$1"): tp $tp, the plans are at tp $plan_tp"; return; }
  for name in "${!total[@]}"; do
    [ "${total[$name]:-0}" -gt 0 ] && [ "${total[$name]}" -le $((mem_g * 1024 * 1024 * 1024 / per_node)) ] \
      && fit=$((fit + 1)) \
      || fail "$name: gorp plan gives ${total[$name]:-no total} bytes per rank at tp $tp, past" \
        "${mem_g}G / $per_node ranks of jobs/$(basename "$1")"
  done
  [ "$planned" -eq 24 ] && [ "$fit" -eq 24 ] && pass "gorp plan --hf-config: the 6 method files and orders" \
    "4-6 of each method fit jobs/$(basename "$1")'s ${mem_g}G / $per_node ranks at tp $tp" \
    || fail "jobs/$(basename "$1"): $fit of $planned plans fit (want 24)"
}
fits "$GORP_SRC/jobs/llama2_7b.sbatch"
for m in olora inclora nlora seqlora mtl; do
  [ "$(ls "$dir/$m"/order*.ini 2>/dev/null | wc -l)" -eq 12 ] || fail "inputs/llama2-7b/$m: not 12 order files"
done

# --- the GPU variant: jobs/llama2_7b_gpu.sbatch is llama2_7b.sbatch with a GPU per rank and cuda ----
cpu_script=$GORP_SRC/jobs/llama2_7b.sbatch
gpu_script=$GORP_SRC/jobs/llama2_7b_gpu.sbatch
if [ -f "$gpu_script" ]; then
  g=$(grep -E '^#SBATCH --(gpus-per-task=[1-9]|gres=gpu)' "$gpu_script")
  b=$(grep -E '^#SBATCH --gpu-bind=[a-z]' "$gpu_script")
  [ -n "$g" ] && [ -n "$b" ] && grep -q '^exec .* --set run.backend=cuda ' "$gpu_script" \
    && pass "llama2_7b_gpu.sbatch: ${g#\#SBATCH }, ${b#\#SBATCH }, --set run.backend=cuda" \
    || fail "llama2_7b_gpu.sbatch: GPUs '${g:-none}', binding '${b:-none}', run.backend=cuda" \
      "$(grep -c '^exec .*run.backend=cuda' "$gpu_script") times on its exec line"
  # the rest as the CPU script: #SBATCH lines but the GPU and core ones, the config list, the exec
  # line (less the backend), hence the layout checked above; and its memory holds every plan
  sbatch_lines() {
    grep '^#SBATCH ' "$1" | grep -vE -- '^#SBATCH --(job-name|cpus-per-task|gpus-per-task|gres|gpu-bind)='
  }
  config_list() { sed -n '/GORP_CONFIGS:=/,/}"/p' "$1" | grep -o 'inputs/[^ }"]*\.ini'; }
  exec_line() { grep '^exec ' "$1" | sed 's/ --set run.backend=cuda / /'; }
  declare -A what=([sbatch_lines]="#SBATCH lines (array, tasks, memory, time, signal, requeue)"
    [config_list]="default configs" [exec_line]="exec line's words (less run.backend=cuda)")
  for part in sbatch_lines config_list exec_line; do
    [ -n "$($part "$cpu_script")" ] && [ "$($part "$gpu_script")" = "$($part "$cpu_script")" ] \
      && pass "llama2_7b_gpu.sbatch: its ${what[$part]} as llama2_7b.sbatch's" \
      || { fail "llama2_7b_gpu.sbatch: its ${what[$part]} are not llama2_7b.sbatch's:"; diff <($part "$cpu_script") <($part "$gpu_script") | sed 's/^/    /'; }
  done
  fits "$gpu_script"
  # what submit.sh records for the post job: every config resolves with the script's own --set
  # options, run.backend=cuda among them, to the CPU script's run directories
  if GORP_HOME=$GORP_SRC bash "$gpu_script" --list >"$work/gpu.list" 2>"$work/gpu.err" \
    && GORP_HOME=$GORP_SRC bash "$cpu_script" --list >"$work/cpu.list" 2>&1 \
    && [ "$(wc -l <"$work/gpu.list")" = 12 ] && cmp -s "$work/gpu.list" "$work/cpu.list"; then
    pass "llama2_7b_gpu.sbatch --list: its 12 configs resolve with run.backend=cuda, as the CPU script's"
  else
    fail "llama2_7b_gpu.sbatch --list:"; cat "$work/gpu.err"; diff "$work/cpu.list" "$work/gpu.list" | head -5
  fi
else
  fail "no jobs/llama2_7b_gpu.sbatch"
fi

# --- run directories under a run root ------------------------------------------------------------
list() { GORP_HOME=$GORP_SRC bash "$GORP_SRC/jobs/gorp_launch.sh" --list "$@"; }
cat >"$work/x.ini" <<INI
[run]
method = gorp
seed = 4
[data]
format = synthetic
order = order1
INI
mapfile -t dirs < <(
  for extra in "" "--set run.method=olora" "--set run.seed=5"; do
    # shellcheck disable=SC2086
    GORP_RUN_ROOT=$work/root list "$work/x.ini" $extra | cut -f3
  done
)
w=$work/root/$(basename "$work")-x
want=("$w-gorp-seed4" "$w-olora-seed4" "$w-gorp-seed5")
[ "${dirs[*]}" = "${want[*]}" ] \
  && pass "--list under GORP_RUN_ROOT: <folder>-<config>-<method>-seed<seed>: gorp, olora and seed 5 of one config apart" \
  || fail "--list: ${dirs[*]} (want ${want[*]})"
# a relative root is taken from the working directory (gorp would take it from the config's folder)
got=$(cd "$work" && GORP_RUN_ROOT=rel list "$work/x.ini" | cut -f3)
[ "$got" = "$work/rel/$(basename "$work")-x-gorp-seed4" ] && pass "a relative GORP_RUN_ROOT is the working directory's" \
  || fail "relative GORP_RUN_ROOT: $got"
# the user's own run.out_dir wins over the root's name
got=$(GORP_RUN_ROOT=$work/root list "$work/x.ini" --set run.out_dir="$work/mine" | cut -f3)
[ "$got" = "$work/mine" ] && pass "--set run.out_dir wins over GORP_RUN_ROOT" || fail "own out_dir: $got"
# without a root: the config's own run.out_dir, one line per config, numbered from 1
got=$(list "$work/x.ini" "$dir/olora/order2.ini" | cut -f1,3 | tr '\t\n' ' ')
[ "$got" = "1 $work/runs/default 2 $GORP_SRC/runs/llama2-7b-olora-order2 " ] \
  && pass "--list without a root: each config's run.out_dir" || fail "--list without a root: $got"
# a run label (run.name: no blanks or commas, but '/' and the like) ends the name, made safe
got=$(GORP_RUN_ROOT=$work/root list "$work/x.ini" --set "run.name=lr1e-3/b" | cut -f3)
[ "$got" = "$work/root/$(basename "$work")-x-gorp-seed4-lr1e-3_b" ] \
  && pass "run.name ends the run directory's name" || fail "run.name: $got"
expect_error "--list with a broken config fails naming the key" "batch_size" \
  list "$work/x.ini" --set train.batch_size=four

# --- the site file ------------------------------------------------------------------------------
# the hook as a job script uses it, under set -eu (submit.sh's flags), then a variable of the file
hook() {
  (
    set -eu
    GORP_HOME=$1 gorp_caller=test
    . "$GORP_SRC/jobs/load_site.sh"
    echo "SITE=${SITE:-unset}"
  )
}
mkdir -p "$work/home/jobs"
# a module script's habits: an unset variable read, an inner command failing
printf 'echo "$UNSET_IN_SITE" >/dev/null\nfalse || true\nls /nonexistent 2>/dev/null\nexport SITE=loaded\ntrue\n' \
  >"$work/home/jobs/site.sh"
[ "$(hook "$work/home" 2>/dev/null)" = SITE=loaded ] && pass "jobs/site.sh is sourced by default, under set -eu" \
  || fail "jobs/site.sh not sourced: $(hook "$work/home" 2>&1)"
printf 'export SITE=other\n' >"$work/other.sh"
[ "$(GORP_SITE_FILE=$work/other.sh hook "$work/home" 2>/dev/null)" = SITE=other ] \
  && pass "GORP_SITE_FILE replaces jobs/site.sh" || fail "GORP_SITE_FILE not sourced"
[ "$(hook "$work" 2>/dev/null)" = SITE=unset ] && pass "no site file: nothing sourced" \
  || fail "without a site file: $(hook "$work" 2>&1)"
expect_error "a missing GORP_SITE_FILE stops the job script" "GORP_SITE_FILE=$work/none.sh is not a readable file" \
  env GORP_SITE_FILE="$work/none.sh" bash -c "$(declare -f hook); hook '$work'"
printf 'module load nosuchmodule\n' >"$work/bad.sh"
expect_error "a site file that fails stops the job script" "the site file $work/bad.sh failed" \
  env GORP_SITE_FILE="$work/bad.sh" GORP_SRC="$GORP_SRC" bash -c "$(declare -f hook); hook '$work'"
finish
