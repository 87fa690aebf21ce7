#!/usr/bin/env bash
# The body every gorp sbatch script ends in (`exec`ed, so it *is* the batch shell and receives
# `--signal=B:USR1@...`): sources the site file, picks this array task's config, checks it with
# `gorp config`, launches `gorp run CONFIG` over the job's tasks with their cores, and turns
# gorp's "checkpointed on USR1" exit into a requeue. docs/SLURM.md.
#
#   gorp_launch.sh [CONFIG...] [--set KEY=VALUE]... [--list]
#
# CONFIG...: the array's config list (default: $GORP_CONFIGS, set by the sbatch script); array
# task N runs the N-th (1-based), a job that is not an array needs a list of one. Relative paths are
# taken from $GORP_HOME. Every --set goes to gorp run, after the launcher's own run.out_dir.
# --list: launch nothing, print "N<TAB>CONFIG<TAB>RUN_DIR" for every config of the list (what
# array task N would run and where; submit.sh records it for the post job) and exit; a config
# that does not resolve fails it with gorp's message.
# Environment: GORP_HOME (the repository; default the submit directory), GORP (the binary; default
# $GORP_HOME/build/gorp), GORP_LAUNCHER (srun, the default, or mpirun), GORP_SRUN_MPI (srun's
# --mpi, default pmix), GORP_CPU_BIND (srun's --cpu-bind, default cores), GORP_THREADS (OpenMP
# and OpenBLAS threads per rank, default --cpus-per-task), GORP_RUN_ROOT (when set, every run
# writes to $GORP_RUN_ROOT/<config folder>-<config name>-<method>-seed<seed>, with -<run.name>
# added where the config names it), GORP_SITE_FILE (jobs/load_site.sh).
set -uo pipefail

die() {
  echo "gorp_launch: $*" >&2
  exit 2
}

: "${GORP_HOME:=${SLURM_SUBMIT_DIR:-$PWD}}"
# first, so that the site file may set the variables below too
gorp_caller=gorp_launch
. "$GORP_HOME/jobs/load_site.sh"
: "${GORP:=$GORP_HOME/build/gorp}"
: "${GORP_LAUNCHER:=srun}"

configs=()
sets=()
list=0
own_out_dir=0
while [ $# -gt 0 ]; do
  case $1 in
    --set)
      [ $# -ge 2 ] || die "--set needs KEY=VALUE"
      sets+=(--set "$2")
      [[ $2 != run.out_dir=* ]] || own_out_dir=1
      shift 2
      ;;
    --list)
      list=1
      shift
      ;;
    -*) die "unknown option '$1' (expected CONFIG..., --set KEY=VALUE and --list)" ;;
    *)
      configs+=("$1")
      shift
      ;;
  esac
done
# the list may span lines (-d ''); read then reports end of input, which is expected
[ ${#configs[@]} -gt 0 ] || read -r -d '' -a configs <<<"${GORP_CONFIGS:-}"
[ ${#configs[@]} -gt 0 ] || die "no config: name one, or set GORP_CONFIGS"
[ -x "$GORP" ] || die "no gorp binary at $GORP (build it, or set GORP)"
# gorp resolves a relative run.out_dir against the config's folder, the post job against its own
# working directory: an absolute root is the same folder for both
root=${GORP_RUN_ROOT:-}
[ -z "$root" ] || [[ $root = /* ]] || root=$PWD/$root

# resolve INDEX: sets config, out (the launcher's --set run.out_dir) and run_dir for the
# INDEX-th config of the list, as gorp resolves it; a broken config exits with gorp's message
resolve() {
  local resolved method seed label
  config=${configs[$1 - 1]}
  [[ $config = /* ]] || config=$GORP_HOME/$config
  [ -f "$config" ] || die "config $config does not exist (GORP_HOME=$GORP_HOME)"
  resolved=$("$GORP" config "$config" "${sets[@]}") || exit
  run_dir=$(sed -n '/^\[run\]/,/^\[/s/^out_dir = //p' <<<"$resolved")
  [[ $run_dir = /* ]] || run_dir=$(dirname "$config")/$run_dir
  out=()
  # under a run root, method and seed are part of the name: GORP and O-LoRA of one order, or
  # one config over several seeds, must not share (and resume) one run directory
  if [ -n "$root" ] && [ "$own_out_dir" -eq 0 ]; then
    method=$(sed -n '/^\[run\]/,/^\[/s/^method = //p' <<<"$resolved")
    seed=$(sed -n '/^\[run\]/,/^\[/s/^seed = //p' <<<"$resolved")
    label=$(sed -n '/^\[run\]/,/^\[/s/^name = //p' <<<"$resolved")
    run_dir=$root/$(basename "$(dirname "$config")")-$(basename "$config" .ini)-$method-seed$seed
    # run.name has no blanks or commas but may hold '/' and the like: anything but letters,
    # digits and ._+- becomes _ in the name
    [ -z "$label" ] || run_dir+=-${label//[^A-Za-z0-9._+-]/_}
    out=(--set "run.out_dir=$run_dir")
  fi
}

if [ "$list" -eq 1 ]; then
  for ((i = 1; i <= ${#configs[@]}; i++)); do
    resolve "$i"
    printf '%s\t%s\t%s\n' "$i" "$config" "$run_dir"
  done
  exit 0
fi

if [ -n "${SLURM_ARRAY_TASK_ID:-}" ]; then
  index=$SLURM_ARRAY_TASK_ID
  [[ $index =~ ^[0-9]+$ ]] && [ "$index" -ge 1 ] && [ "$index" -le ${#configs[@]} ] \
    || die "array task $index has no config: the list has ${#configs[@]} (${configs[*]}), indices 1-${#configs[@]}"
elif [ ${#configs[@]} -eq 1 ]; then
  index=1
else
  die "${#configs[@]} configs (${configs[*]}) but this is not an array job: submit with --array=1-${#configs[@]}"
fi
# a broken config stops here, before any rank starts
resolve "$index"
# model.h5 is written once, at the end of a run: if it is the same file after the launcher
# returned 0, no rank ran (srun was seen to exit 0 when it could not start the tasks)
model_before=$(stat -c '%y %i %s' "$run_dir/model.h5" 2>/dev/null)

ntasks=${SLURM_NTASKS:-1}
cpus=${SLURM_CPUS_PER_TASK:-1}
# Since Slurm 22.05 srun no longer inherits --cpus-per-task from sbatch: without it each rank
# gets one core of the task's cores (and OpenMP then runs all its threads on it). Exported too,
# for any srun the site file or mpirun starts.
export SRUN_CPUS_PER_TASK=$cpus
# one thread per core of the task (GORP_THREADS overrides), for gorp's OpenMP loops and for
# OpenBLAS; set here, not inherited: sbatch exports the submitting shell's environment, where a
# login node's OMP_NUM_THREADS=1 is common. gorp records both counts in its checkpoints, and a
# requeue gets the same ones from the same --cpus-per-task.
export OMP_NUM_THREADS=${GORP_THREADS:-$cpus}
export OPENBLAS_NUM_THREADS=$OMP_NUM_THREADS
case $GORP_LAUNCHER in
  # each rank bound to cores of its own (where the site's TaskPlugin binds: task/affinity)
  srun) launch=(srun --mpi="${GORP_SRUN_MPI:-pmix}" --ntasks="$ntasks" --cpus-per-task="$cpus"
    --cpu-bind="${GORP_CPU_BIND:-cores}") ;;
  # Open MPI's mpirun reads the Slurm allocation itself; -np keeps the world at the job's tasks,
  # PE=cpus binds each rank to that many cores (its default would bind each to one core)
  mpirun) launch=(mpirun -np "$ntasks" --map-by "slot:PE=$cpus" --bind-to core) ;;
  *) die "GORP_LAUNCHER=$GORP_LAUNCHER: expected srun or mpirun" ;;
esac

echo "gorp_launch: job ${SLURM_JOB_ID:-?} array task ${SLURM_ARRAY_TASK_ID:--}" \
  "restart ${SLURM_RESTART_COUNT:-0}: ${launch[*]} $GORP run $config ${out[*]} ${sets[*]}"
echo "gorp_launch: $ntasks rank(s) x $cpus core(s): OMP_NUM_THREADS=$OMP_NUM_THREADS" \
  "OPENBLAS_NUM_THREADS=$OPENBLAS_NUM_THREADS run directory $run_dir"

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
