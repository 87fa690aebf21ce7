#!/usr/bin/env bash
# Submits a benchmark array and, chained after it with --dependency=afterok, the post-processing
# job that tabulates its runs (it runs only if every array task succeeded). docs/SLURM.md.
#
#   jobs/submit.sh standard|large|7b [SBATCH_OPTION...] [-- [CONFIG...] [--set KEY=VALUE]...]
#
# SBATCH_OPTIONs go to the array job only (e.g. --array=2, --ntasks=2, --time=1:00:00); options
# for both jobs: SBATCH_PARTITION, SBATCH_ACCOUNT, ... in the environment (sbatch reads them).
# Every run writes to $GORP_RUN_ROOT/<config folder>-<config name>, and the post job tabulates
# $GORP_RUN_ROOT (default $GORP_HOME/runs/<benchmark>); the jobs' logs go to $GORP_RUN_ROOT/logs.
# Prints "ARRAY_ID POST_ID".
set -euo pipefail
usage="usage: jobs/submit.sh standard|large|7b [SBATCH_OPTION...] [-- [CONFIG...] [--set KEY=VALUE]...]"
[ $# -ge 1 ] || { echo "$usage" >&2; exit 64; }
: "${GORP_HOME:=$PWD}"
GORP_HOME=$(cd "$GORP_HOME" && pwd)
case $1 in
  standard) script=clbench_standard.sbatch ;;
  large) script=clbench_large.sbatch ;;
  7b) script=llama2_7b.sbatch ;;
  *) echo "submit.sh: unknown benchmark '$1' (standard, large or 7b); $usage" >&2; exit 64 ;;
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
mkdir -p "$GORP_RUN_ROOT/logs"
GORP_RUN_ROOT=$(cd "$GORP_RUN_ROOT" && pwd) # the jobs run in GORP_HOME, not here
# --parsable prints "ID" or "ID;CLUSTER"; a later --output among the options wins
array=$(sbatch --parsable --chdir="$GORP_HOME" --output="$GORP_RUN_ROOT/logs/%x-%A_%a.out" \
  "${opts[@]}" "$GORP_HOME/jobs/$script" "$@")
array=${array%%;*}
post=$(sbatch --parsable --chdir="$GORP_HOME" --dependency="afterok:$array" \
  --output="$GORP_RUN_ROOT/logs/%x-%j.out" "$GORP_HOME/jobs/post.sbatch" "$GORP_RUN_ROOT")
post=${post%%;*}
echo "$array $post"
