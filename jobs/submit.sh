#!/usr/bin/env bash
# Submits a benchmark array and, chained after it with --dependency=afterany, the post-processing
# job that tabulates its runs and reports every array task whose run is missing or incomplete.
# docs/SLURM.md.
#
#   jobs/submit.sh standard|large|7b|7b-gpu [SBATCH_OPTION...] [-- [CONFIG...] [--set KEY=VALUE]...]
#
# 7b-gpu: jobs/llama2_7b_gpu.sbatch, the 7b array with one GPU per rank and run.backend = cuda.
# SBATCH_OPTIONs go to the array job only (e.g. --array=2, --ntasks=2, --time=1:00:00); options
# for both jobs: SBATCH_PARTITION, SBATCH_ACCOUNT, ... in the environment (sbatch reads them).
# Before submitting it sources the site file (jobs/load_site.sh) and resolves every config with
# `gorp config` (a broken one stops it here, nothing queued). Every run writes to
# $GORP_RUN_ROOT/<config folder>-<config name>-<method>-seed<seed> (gorp_launch.sh), and the post
# job tabulates $GORP_RUN_ROOT (default $GORP_HOME/runs/<benchmark>); the jobs' logs go to
# $GORP_RUN_ROOT/logs, with logs/gorp-array-<ARRAY_ID>.runs, the array's tasks and their run
# directories, for the post job. Prints "ARRAY_ID POST_ID".
set -euo pipefail
usage="usage: jobs/submit.sh standard|large|7b|7b-gpu [SBATCH_OPTION...] [-- [CONFIG...] [--set KEY=VALUE]...]"
[ $# -ge 1 ] || { echo "$usage" >&2; exit 64; }
: "${GORP_HOME:=$PWD}"
GORP_HOME=$(cd "$GORP_HOME" && pwd)
case $1 in
  standard) script=clbench_standard.sbatch ;;
  large) script=clbench_large.sbatch ;;
  7b) script=llama2_7b.sbatch ;;
  7b-gpu) script=llama2_7b_gpu.sbatch ;;
  *) echo "submit.sh: unknown benchmark '$1' (standard, large, 7b or 7b-gpu); $usage" >&2; exit 64 ;;
esac
bench=$1
shift
opts=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
  opts+=("$1")
  shift
done
[ $# -eq 0 ] || shift
[ -f "$GORP_HOME/jobs/$script" ] \
  || { echo "submit.sh: $GORP_HOME/jobs/$script not found: run from the repository or set GORP_HOME" >&2; exit 2; }
: "${GORP_RUN_ROOT:=$GORP_HOME/runs/$bench}"
export GORP_HOME GORP_RUN_ROOT
gorp_caller=submit.sh
. "$GORP_HOME/jobs/load_site.sh"
mkdir -p "$GORP_RUN_ROOT/logs"
GORP_RUN_ROOT=$(cd "$GORP_RUN_ROOT" && pwd) # the jobs run in GORP_HOME, not here
# every config of the list with its run directory, as the array tasks will resolve them (the
# script's own default list and --set options included): "N<TAB>CONFIG<TAB>RUN_DIR" lines
runs=$(bash "$GORP_HOME/jobs/$script" --list "$@") \
  || { echo "submit.sh: a config of the list does not resolve (above); nothing submitted" >&2; exit 2; }
# --parsable prints "ID" or "ID;CLUSTER"; a later --output among the options wins
array=$(sbatch --parsable --chdir="$GORP_HOME" --output="$GORP_RUN_ROOT/logs/%x-%A_%a.out" \
  "${opts[@]}" "$GORP_HOME/jobs/$script" "$@")
array=${array%%;*}
# the task ids Slurm made of --array (the script's or the options'), each with its config and run
# directory; an id past the list has none (its task fails naming the list)
manifest=$GORP_RUN_ROOT/logs/gorp-array-$array.runs
tasks=$(squeue -h -r -t all -j "$array" -o %K) && [ -n "$tasks" ] \
  || { echo "submit.sh: squeue does not list the tasks of array $array; cancel it (scancel $array) or submit jobs/post.sbatch by hand" >&2; exit 2; }
for t in $(sort -n <<<"$tasks"); do
  awk -F '\t' -v t="$t" '$1 == t { print; found = 1 } END { if (!found) print t "\t-\t-" }' <<<"$runs"
done >"$manifest"
post=$(sbatch --parsable --chdir="$GORP_HOME" --dependency="afterany:$array" \
  --output="$GORP_RUN_ROOT/logs/%x-%j.out" "$GORP_HOME/jobs/post.sbatch" "$GORP_RUN_ROOT" "$manifest")
post=${post%%;*}
echo "$array $post"
