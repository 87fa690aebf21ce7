#!/usr/bin/env bash
# The body every gorp sbatch script ends in (`exec`ed, so it *is* the batch shell and receives
# `--signal=B:USR1@...`): picks this array task's config, checks it with `gorp config`, launches
# `gorp run CONFIG` over the job's tasks, and turns gorp's "checkpointed on USR1" exit into a
# requeue. docs/SLURM.md.
#
#   gorp_launch.sh [CONFIG...] [--set KEY=VALUE]...
#
# CONFIG...: the array's config list (default: $GORP_CONFIGS, set by the sbatch script); array
# task N runs the N-th (1-based), a job that is not an array needs a list of one. Relative paths are
# taken from $GORP_HOME. Every --set goes to gorp run, after the launcher's own run.out_dir.
# Environment: GORP_HOME (the repository; default the submit directory), GORP (the binary; default
# $GORP_HOME/build/gorp), GORP_LAUNCHER (srun, the default, or mpirun), GORP_RUN_ROOT (when set,
# every run writes to $GORP_RUN_ROOT/<config folder>-<config name>).
set -uo pipefail

die() {
  echo "gorp_launch: $*" >&2
  exit 2
}

: "${GORP_HOME:=${SLURM_SUBMIT_DIR:-$PWD}}"
: "${GORP:=$GORP_HOME/build/gorp}"
: "${GORP_LAUNCHER:=srun}"

configs=()
sets=()
while [ $# -gt 0 ]; do
  case $1 in
    --set)
      [ $# -ge 2 ] || die "--set needs KEY=VALUE"
      sets+=(--set "$2")
      shift 2
      ;;
    -*) die "unknown option '$1' (expected CONFIG... and --set KEY=VALUE)" ;;
    *)
      configs+=("$1")
      shift
      ;;
  esac
done
# the list may span lines (-d ''); read then reports end of input, which is expected
[ ${#configs[@]} -gt 0 ] || read -r -d '' -a configs <<<"${GORP_CONFIGS:-}"
[ ${#configs[@]} -gt 0 ] || die "no config: name one, or set GORP_CONFIGS"

if [ -n "${SLURM_ARRAY_TASK_ID:-}" ]; then
  index=$SLURM_ARRAY_TASK_ID
  [[ $index =~ ^[0-9]+$ ]] && [ "$index" -ge 1 ] && [ "$index" -le ${#configs[@]} ] \
    || die "array task $index has no config: the list has ${#configs[@]} (${configs[*]}), indices 1-${#configs[@]}"
elif [ ${#configs[@]} -eq 1 ]; then
  index=1
else
  die "${#configs[@]} configs (${configs[*]}) but this is not an array job: submit with --array=1-${#configs[@]}"
fi
config=${configs[index - 1]}
[[ $config = /* ]] || config=$GORP_HOME/$config
[ -f "$config" ] || die "config $config does not exist (GORP_HOME=$GORP_HOME)"
[ -x "$GORP" ] || die "no gorp binary at $GORP (build it, or set GORP)"

out=()
if [ -n "${GORP_RUN_ROOT:-}" ]; then
  out=(--set "run.out_dir=$GORP_RUN_ROOT/$(basename "$(dirname "$config")")-$(basename "$config" .ini)")
fi

# the run directory as gorp resolves it; a broken config stops here, before any rank starts
resolved=$("$GORP" config "$config" "${out[@]}" "${sets[@]}") || exit
run_dir=$(sed -n '/^\[run\]/,/^\[/s/^out_dir = //p' <<<"$resolved")
[[ $run_dir = /* ]] || run_dir=$(dirname "$config")/$run_dir
# model.h5 is written once, at the end of a run: if it is the same file after the launcher
# returned 0, no rank ran (srun was seen to exit 0 when it could not start the tasks)
model_before=$(stat -c '%y %i %s' "$run_dir/model.h5" 2>/dev/null)

ntasks=${SLURM_NTASKS:-1}
# one BLAS thread per rank unless the job gave each task more cores
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}
case $GORP_LAUNCHER in
  srun) launch=(srun --mpi="${GORP_SRUN_MPI:-pmix}" --ntasks="$ntasks") ;;
  # Open MPI's mpirun reads the Slurm allocation itself; -np keeps the world at the job's tasks
  mpirun) launch=(mpirun -np "$ntasks") ;;
  *) die "GORP_LAUNCHER=$GORP_LAUNCHER: expected srun or mpirun" ;;
esac

echo "gorp_launch: job ${SLURM_JOB_ID:-?} array task ${SLURM_ARRAY_TASK_ID:--}" \
  "restart ${SLURM_RESTART_COUNT:-0}: ${launch[*]} $GORP run $config ${out[*]} ${sets[*]}"

# Slurm's warning before the time limit (--signal=B:USR1@...) reaches only this shell: pass it on
# to gorp, which finishes its step, checkpoints and exits 75; srun and mpirun forward SIGUSR1 to
# every rank. SIGTERM (scancel, preemption, the limit itself) also gets a checkpoint but no
# requeue: a cancelled job must stay cancelled.
warned=0
interrupted=0
pid=
stop_gorp() {
  interrupted=1
  if [ -n "$pid" ]; then kill -USR1 "$pid" 2>/dev/null; fi
}
trap 'warned=1; stop_gorp' USR1
trap stop_gorp TERM

"${launch[@]}" "$GORP" run "$config" "${out[@]}" "${sets[@]}" &
pid=$!
[ "$interrupted" -eq 0 ] || kill -USR1 "$pid" 2>/dev/null
# a trapped signal interrupts `wait` (status > 128) while the ranks are still saving: wait again
while true; do
  interrupted=0
  wait "$pid"
  rc=$?
  [ "$interrupted" -eq 1 ] && [ "$rc" -gt 128 ] || break
done

# 75 = gorp's "checkpointed on a signal, resubmit me" (CKPT_EXIT_RESUBMIT); any other failure
# fails the job so that a dependent job never runs on a broken result
if [ "$rc" -eq 75 ] && [ "$warned" -eq 1 ]; then
  echo "gorp_launch: gorp checkpointed on USR1 (exit 75); requeueing job $SLURM_JOB_ID"
  scontrol requeue "$SLURM_JOB_ID" || { echo "gorp_launch: scontrol requeue failed" >&2; exit 75; }
  exit 0
fi
if [ "$rc" -eq 0 ] && [ "$(stat -c '%y %i %s' "$run_dir/model.h5" 2>/dev/null)" = "$model_before" ]; then
  echo "gorp_launch: ${launch[0]} exited 0 but $run_dir/model.h5 was not written: the ranks did not run" >&2
  exit 1
fi
echo "gorp_launch: gorp run exited $rc"
exit "$rc"
