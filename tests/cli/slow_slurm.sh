#!/usr/bin/env bash
# The sbatch scripts of jobs/ on a private one-node Slurm (munged, slurmctld, slurmd under this
# test's temp folder, on ports of their own, task/affinity binding), with tiny synthetic configs: a
# 2-rank array of two runs and its chained post-processing job (jobs/submit.sh), each rank on its
# own core; a job of --cpus-per-task=2 whose rank gets both cores and 2 threads; run directories
# named after config, method and seed; a run stopped by USR1 mid-training checkpoints, is
# requeued and ends equal to an uninterrupted run (launched with mpirun), its post job waiting
# for the requeued end; an array with a run that fails mid-task, one that fails at start and an
# index without a config, whose post job runs after all of them, prints the table of the run that
# exists and reports the other three by task and directory, and fails; a broken config fails its
# job without a requeue, and submit.sh refuses it before queueing anything; --ntasks against the
# config's tp x dp fails with gorp's message; scancel does not requeue; jobs/llama2_7b_gpu.sbatch,
# on a node of 4 stand-in GPUs (device files only), gives each of its 4 ranks a GPU of its own and
# run.backend=cuda (a probe stands in for gorp). Also: every sbatch script's --ntasks equals tp x dp
# of each of its default configs. docs/SLURM.md.
. "$(dirname "$0")/lib.bash"
: "${GORP_SRC:?GORP_SRC must name the source tree}"
: "${GORP_PYTHON:?GORP_PYTHON must name a Python with h5py}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export GORP GORP_PYTHON GORP_HOME=$GORP_SRC TMPDIR=$work
# nothing from an outer Slurm (a real cluster's SLURM_CONF, or this test run inside a job) may reach
# the private one, or be cancelled by the teardown
unset $(compgen -e | grep -E '^(SLURM|SBATCH|SRUN|SALLOC)_')

# --- every sbatch script asks for tp x dp tasks of its default configs (no Slurm needed) --------
for script in "$GORP_SRC"/jobs/*.sbatch; do
  name=$(basename "$script")
  grep -q '^: "${GORP_CONFIGS:=' "$script" || continue
  ntasks=$(sed -n 's/^#SBATCH --ntasks=\([0-9]*\)$/\1/p' "$script")
  # the configs named in the default list and the --set options on the exec line
  mapfile -t cfgs < <(sed -n '/GORP_CONFIGS:=/,/}"/p' "$script" | grep -o 'inputs/[^ }"]*\.ini')
  read -ra sets < <(grep '^exec ' "$script" | grep -o -- '--set [^ "]*' | tr '\n' ' ')
  bad=()
  for cfg in "${cfgs[@]}"; do
    layout=$("$GORP" config "$GORP_SRC/$cfg" "${sets[@]}" 2>&1 | sed -n '/^\[parallel\]/,/^\[/p')
    tp=$(sed -n 's/^tp = //p' <<<"$layout")
    dp=$(sed -n 's/^dp = //p' <<<"$layout")
    [ -n "$tp" ] && [ -n "$dp" ] && [ $((tp * dp)) -eq "${ntasks:-0}" ] || bad+=("$cfg: tp ${tp:-?} x dp ${dp:-?}")
  done
  if [ ${#cfgs[@]} -gt 0 ] && [ ${#bad[@]} -eq 0 ]; then
    pass "$name: --ntasks=$ntasks = tp x dp of its ${#cfgs[@]} configs"
  else
    fail "$name: --ntasks=${ntasks:-none} but ${bad[*]:-no configs found}"
  fi
done

# --- a private Slurm ------------------------------------------------------------------------------
for cmd in munged munge unmunge slurmctld slurmd sbatch squeue scontrol scancel sinfo srun; do
  command -v "$cmd" >/dev/null || {
    fail "$cmd is not installed (apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge)"
    finish
    exit
  }
done
sl=$work/slurm
mkdir -p "$sl"/{state,spool,log,munge,tmp}
chmod 755 "$work" "$sl" # munged runs as munge and must reach its folder
chown munge: "$sl/munge"
chmod 755 "$sl/munge" # its socket must be reachable by every user
sock=$sl/munge/munge.sock
pids=()

# two free TCP ports next to each other, from this process's id
free_port() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=$((20000 + ($$ * 7) % 40000))
until free_port "$port" && free_port $((port + 1)); do port=$((port + 2)); done

stop_slurm() {
  local i pid
  if [ "${SLURM_CONF:-}" = "$sl/slurm.conf" ]; then
    # every job of this private cluster is this test's
    scancel --quiet --user="$(id -un)" 2>/dev/null
    # the jobs' step daemons outlive slurmd: let them end before the daemons go
    for i in $(seq 50); do
      [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.2
    done
  fi
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid=${pids[i]}
    kill "$pid" 2>/dev/null || continue
    timeout 15 tail --pid="$pid" -f /dev/null || kill -KILL "$pid" 2>/dev/null
  done
}
trap 'stop_slurm; rm -rf "$work"' EXIT
trap 'exit 1' INT TERM

daemon_logs() {
  for f in "$sl"/log/* "$sl"/munge/munged.log; do
    [ -f "$f" ] && { echo "--- $f"; tail -30 "$f"; }
  done
}
# wait_for WHAT SECONDS CMD...: polls CMD; on timeout fails with the daemon logs and ends the test
wait_for() {
  local what=$1 limit=$2 t0=$SECONDS
  shift 2
  until "$@" >/dev/null 2>&1; do
    if [ $((SECONDS - t0)) -ge "$limit" ]; then
      fail "$what did not come up within $limit s"
      daemon_logs
      finish
      exit
    fi
    sleep 0.2
  done
}

setsid runuser -u munge -- munged -F --socket="$sock" --pid-file="$sl/munge/munged.pid" \
  --log-file="$sl/munge/munged.log" --seed-file="$sl/munge/munged.seed" >"$sl/log/munged.out" 2>&1 &
pids+=($!)
munge_ok() { munge -S "$sock" -n | unmunge -S "$sock"; }
wait_for "munged" 10 munge_ok

mem=$(awk '/^MemTotal/ { print int($2 / 1024 * 0.8) }' /proc/meminfo)
export SLURM_CONF=$sl/slurm.conf
# 4 stand-in GPUs for jobs/llama2_7b_gpu.sbatch: Slurm refuses --gpus-per-task on a node without
# gres/gpu, and slurmd wants a device file per GPU (these are /dev/null's device number; nothing
# opens them). Without mknod (no CAP_MKNOD) the node has none and the GPU job is left out.
gres=
if (for i in 0 1 2 3; do mknod "$sl/nvidia$i" c 1 3 || exit 1; done) 2>/dev/null; then
  printf 'NodeName=localhost Name=gpu File=%s/nvidia[0-3]\n' "$sl" >"$sl/gres.conf"
  gres=Gres=gpu:4
fi
cat >"$SLURM_CONF" <<CONF
ClusterName=gorptest
SlurmctldHost=localhost
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# a requeued job waits cred_expire (default 120 s) before it may start again
AuthInfo=socket=$sock,cred_expire=5
MpiDefault=pmix
ProctrackType=proctrack/linuxproc
# binds each rank to its cores (srun --cpu-bind), as on a cluster; it needs no cgroups, and maps
# the 8 CPUs declared below onto the machine's cores
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MailProg=/bin/true
StateSaveLocation=$sl/state
SlurmdSpoolDir=$sl/spool
SlurmctldPidFile=$sl/slurmctld.pid
SlurmdPidFile=$sl/slurmd.pid
SlurmctldLogFile=$sl/log/slurmctld.log
SlurmdLogFile=$sl/log/slurmd.log
ReturnToService=2
# job ids and temporary files of its own: PMIx and Open MPI name their /tmp files after the job id,
# and two copies of this test once broke each other's step launches through them
FirstJobId=$((port * 10))
TmpFS=$sl/tmp
MinJobAge=600
KillWait=5
# 8 CPUs on 2 cores (config_overrides: slurmd believes the config): the tiny jobs run side by
# side, and a post job started without waiting for its dependency would run at once
SlurmdParameters=config_overrides
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs=8 RealMemory=$mem $gres State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
setsid slurmctld -D >"$sl/log/slurmctld.out" 2>&1 &
pids+=($!)
wait_for "slurmctld" 20 scontrol ping
setsid slurmd -D -N localhost >"$sl/log/slurmd.out" 2>&1 &
pids+=($!)
node_idle() { [ "$(sinfo -h -N -o %t)" = idle ]; }
wait_for "slurmd (node idle)" 20 node_idle
pass "private Slurm up (ports $port/$((port + 1)), node localhost idle)"

# --- tiny synthetic configs -----------------------------------------------------------------------
cat >"$work/common.ini" <<INI
[run]
seed = 2
log_every = 1
[model]
hidden_size = 32
intermediate_size = 48
num_layers = 1
num_heads = 2
max_seq = 256
[data]
format = synthetic
order = order1
synthetic_train = 16
synthetic_test = 4
[pretrain]
out = base.h5
steps = 20
batch_size = 4
warmup = 5
[train]
batch_size = 4
max_steps = 3
[eval]
max_new_tokens = 4
INI
# config NAME LINES...: $work/NAME.ini, the common settings on the pretrained base plus LINES
config() {
  local name=$1
  shift
  printf '%s\n' "include = common.ini" "[model]" "init = base.h5" "$@" >"$work/$name.ini"
}
config a "[run]" "method = seqft" "[parallel]" "dp = 2"
config b "[run]" "method = inclora" "[parallel]" "tp = 2"
# long enough (about 5 s) in its second task for the signal to land inside it
config long "[run]" "method = inclora" "log_every = 500" "[data]" "order =" \
  "tasks = syn-dbpedia, syn-amazon" "[parallel]" "dp = 2" "[train]" "epochs = 10000" \
  "max_steps = 6000" "per_task = syn-dbpedia:max_steps=300"
config broken "[train]" "batch_size = four"
config single
# a run that fails mid-way (a NaN loss in task 2: exit 6, results.h5 of task 1 only) and one that
# fails at start (no model file: no results.h5)
config nan "[run]" "method = seqft" "seed = 3" "[parallel]" "dp = 2" "[train]" \
  "per_task = syn-amazon:lr=1e30"
config nomodel "[run]" "method = seqft" "[parallel]" "dp = 2"
sed -i 's/^init = base.h5$/init = nomodel.h5/' "$work/nomodel.ini"
# GORP for the binding checks: each rank prints its CPU mask and thread variables, then is gorp
cat >"$work/probe" <<SH
#!/bin/bash
[ "\${1:-}" != run ] || echo "probe rank \$SLURM_PROCID: \$(grep Cpus_allowed_list /proc/self/status | tr -d '\t')" \
  "OMP_NUM_THREADS=\${OMP_NUM_THREADS:-} OPENBLAS_NUM_THREADS=\${OPENBLAS_NUM_THREADS:-}"
exec "$GORP" "\$@"
SH
chmod +x "$work/probe"
"$GORP" pretrain "$work/common.ini" >"$work/pre.log" 2>&1 || { fail "gorp pretrain:"; tail -5 "$work/pre.log"; }

# --- job helpers ----------------------------------------------------------------------------------
# field ID KEY: KEY's value in `scontrol show job ID` (the first record)
field() { scontrol -o show job "$1" 2>/dev/null | head -1 | grep -o " $2=[^ ]*" | cut -d= -f2-; }
# all_done ID: every record of ID (all tasks of an array) is in a final state
all_done() {
  local states
  states=$(scontrol -o show job "$1" 2>/dev/null | grep -o ' JobState=[A-Z_]*' | cut -d= -f2)
  [ -n "$states" ] && ! grep -qvE '^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED)$' <<<"$states"
}
# The ceiling of every wait: a hang guard until the reference run's duration is measured, then
# 5x that duration + 60 s (the requeue hold, daemons and Python start-up on a loaded machine)
HANG_S=${GORP_SLURM_HANG_S:-900}
ceiling=$HANG_S
# job_state ID [LOG]: the job's records (state, reason, run time, restarts) and LOG's tail
job_state() {
  scontrol -o show job "$1" 2>/dev/null | grep -oE ' (JobId|JobState|Reason|RunTime|Restarts)=[^ ]*' \
    | tr -d '\n' | sed 's/^/    job:/'
  echo
  [ -n "${2:-}" ] && for f in $2; do [ -f "$f" ] && { echo "    --- tail of $f"; tail -15 "$f" | sed 's/^/    /'; }; done
  return 0
}
# wait_job ID [LOG]: waits for all_done up to $ceiling s; a timeout prints the job's state and LOG's
# tail and fails the check (the caller's) instead of hanging
wait_job() {
  local t0=$SECONDS
  until all_done "$1"; do
    [ $((SECONDS - t0)) -lt "$ceiling" ] || { echo "    job $1 not done after $ceiling s:"; job_state "$1" "${2:-}"; return 1; }
    sleep 0.3
  done
}
# wait_until WHAT CMD...: polls CMD up to $ceiling s; on timeout prints WHAT and fails
wait_until() {
  local what=$1 t0=$SECONDS
  shift
  until "$@" 2>/dev/null; do
    [ $((SECONDS - t0)) -lt "$ceiling" ] || { echo "    $what: not after $ceiling s"; return 1; }
    sleep 0.2
  done
}
# seconds ID: the run time of finished job ID (EndTime - StartTime of its last record)
seconds() {
  local start end
  start=$(field "$1" StartTime) end=$(field "$1" EndTime)
  echo $(($(date -d "$end" +%s) - $(date -d "$start" +%s)))
}
# complete RUN_DIR: results.h5 whose last row is measured for every task, AP included
complete() {
  "$GORP_PYTHON" - "$1/results.h5" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    a = f["acc_matrix"][()]
    ok = a.shape[0] == a.shape[1] + 1 and not np.isnan(a[-1]).any() and np.isfinite(f.attrs["AP"])
sys.exit(0 if ok else 1)
PY
}
submit() { # submit SBATCH_ARGS...: the job id
  local id
  id=$(sbatch --parsable "$@") || return 1
  echo "${id%%;*}"
}
cd "$GORP_SRC" || exit 1
few=(--ntasks=2 --cpus-per-task=1 --mem-per-cpu=500M)

# --- queue everything at once -------------------------------------------------------------------
read -r arr post < <(GORP=$work/probe GORP_RUN_ROOT=$work/ok jobs/submit.sh standard "${few[@]}" \
  --array=1-2 -- "$work/a.ini" "$work/b.ini")
read -r long longpost < <(GORP_RUN_ROOT=$work/long jobs/submit.sh standard "${few[@]}" --array=1 \
  --output="$work/long.log" -- "$work/long.ini")
ref=$(GORP_RUN_ROOT=$work/ref GORP_LAUNCHER=mpirun submit "${few[@]}" --array=1 \
  --output="$work/ref.log" jobs/clbench_standard.sbatch "$work/long.ini")
# index 4 has no config: the list has 3
read -r failed failpost < <(GORP_RUN_ROOT=$work/fail jobs/submit.sh standard "${few[@]}" --array=1-4 \
  -- "$work/a.ini" "$work/nan.ini" "$work/nomodel.ini")
bind=$(GORP=$work/probe GORP_RUN_ROOT=$work/bind submit --ntasks=1 --cpus-per-task=2 --mem-per-cpu=500M \
  --array=1 --output="$work/bind.log" jobs/clbench_standard.sbatch "$work/single.ini")
bad=$(GORP_RUN_ROOT=$work/bad submit "${few[@]}" --array=1 --output="$work/bad.log" \
  jobs/clbench_standard.sbatch "$work/broken.ini")
mis=$(GORP_RUN_ROOT=$work/mis submit "${few[@]}" --array=1 --output="$work/mis.log" \
  jobs/clbench_standard.sbatch "$work/single.ini")
# the GPU script on the stand-in GPUs, through its own #SBATCH lines but the cores and memory this
# node has: GORP is a probe that prints what each rank sees (nothing can run cuda here, and the 7B
# model is not here). Its 4 ranks cannot each have a core of their own on 2 cores: no core binding.
gpu=
if [ -n "$gres" ]; then
  cat >"$work/gpuprobe" <<SH
#!/bin/bash
[ "\${1:-}" = run ] || exec "$GORP" "\$@"
echo "gpu probe rank \$SLURM_PROCID local \$SLURM_LOCALID CUDA_VISIBLE_DEVICES=\${CUDA_VISIBLE_DEVICES:-unset} args: \$*"
: >"$work/gpu/model.h5"
SH
  chmod +x "$work/gpuprobe"
  mkdir -p "$work/gpu"
  gpu=$(GORP=$work/gpuprobe GORP_CPU_BIND=none submit --cpus-per-task=1 --mem=1G --array=1 \
    --output="$work/gpu.log" jobs/llama2_7b_gpu.sbatch --set run.out_dir="$work/gpu")
  [ -n "$gpu" ] || fail "sbatch refused jobs/llama2_7b_gpu.sbatch on a node of 4 GPUs"
fi
[ -n "$arr" ] && [ -n "$post" ] && [ -n "$long" ] && [ -n "$longpost" ] && [ -n "$ref" ] \
  && [ -n "$failed" ] && [ -n "$failpost" ] && [ -n "$bind" ] && [ -n "$bad" ] && [ -n "$mis" ] \
  && pass "submitted: array $arr + post $post, checkpoint run $long + post $longpost, reference $ref," \
    "failing array $failed + post $failpost, binding $bind, broken $bad, mismatch $mis" \
  || fail "sbatch refused a job (array '$arr', post '$post', long '$long', its post '$longpost', ref '$ref'," \
    "failing '$failed', its post '$failpost', binding '$bind', bad '$bad', mis '$mis')"

# submit.sh resolves every config before it queues anything: a broken one is refused there
if GORP_RUN_ROOT=$work/refused jobs/submit.sh standard "${few[@]}" -- "$work/a.ini" "$work/broken.ini" \
  >"$work/refused.out" 2>"$work/refused.err"; then
  fail "submit.sh queued a list with a broken config: $(cat "$work/refused.out")"
else
  rc=$?
  [ "$rc" = 2 ] && grep -q "batch_size" "$work/refused.err" && grep -q "nothing submitted" "$work/refused.err" \
    && [ ! -s "$work/refused.out" ] && [ -z "$(ls "$work/refused/logs")" ] \
    && pass "submit.sh with a broken config: exit 2 naming the key, nothing submitted" \
    || { fail "submit.sh with a broken config: exit $rc"; cat "$work/refused.err"; }
fi

# --- the array and its chained post job -----------------------------------------------------------
# started_after ARRAY POST: POST started at or after the last end of ARRAY's tasks (seconds)
started_after() {
  local last_end post_start
  last_end=$(scontrol -o show job "$1" | grep -o ' EndTime=[^ ]*' | cut -d= -f2 | sort | tail -1)
  post_start=$(field "$2" StartTime)
  echo "started $post_start, the last end of $1 $last_end"
  [ -n "$last_end" ] && [ "$post_start" != Unknown ] && [[ ! $post_start < $last_end ]]
}
if wait_job "$arr" "$work/ok/logs/gorp-std-${arr}_*.out" && wait_job "$post" "$work/ok/logs/gorp-post-$post.out"; then
  states=$(scontrol -o show job "$arr" | grep -o ' JobState=[A-Z]*' | sort | uniq -c | tr -s ' ')
  [ "$states" = " 2 JobState=COMPLETED" ] && pass "array $arr: both tasks COMPLETED" || fail "array $arr:$states"
  # the run directories carry config, method and seed
  for r in a-seqft b-inclora; do
    d=$work/ok/$(basename "$work")-$r-seed2
    complete "$d" && pass "run $r (2 ranks) in $(basename "$d"): results.h5 with the last row of every task" \
      || { fail "run $r: results.h5 incomplete or missing in $d"; ls "$work/ok"; cat "$work"/ok/logs/gorp-std-"$arr"_*.out; }
  done
  grep -l "tp 1 x dp 2" "$work"/ok/logs/gorp-std-"$arr"_1.out >/dev/null \
    && grep -l "tp 2 x dp 1" "$work"/ok/logs/gorp-std-"$arr"_2.out >/dev/null \
    && grep -q "srun --mpi=pmix --ntasks=2 --cpus-per-task=1 --cpu-bind=cores" "$work"/ok/logs/gorp-std-"$arr"_1.out \
    && pass "srun --mpi=pmix --cpus-per-task=1 --cpu-bind=cores launched 2 ranks per task (dp 2, tp 2)" \
    || fail "the array's logs lack the 2-rank layouts or srun's options"
  # each rank, inside the job, on one core of its own with one thread
  for t in 1 2; do
    probes=$(grep "^probe rank" "$work"/ok/logs/gorp-std-"$arr"_$t.out | sort)
    masks=$(grep -o 'Cpus_allowed_list:[0-9,-]*' <<<"$probes" | sort -u)
    [ "$(wc -l <<<"$probes")" = 2 ] && [ "$(grep -c 'OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1$' <<<"$probes")" = 2 ] \
      && [ "$(wc -l <<<"$masks")" = 2 ] && ! grep -q '[,-]' <<<"$masks" \
      && pass "task $t: 2 ranks, each bound to a core of its own ($(tr '\n' ' ' <<<"$masks")), 1 OpenMP and 1 OpenBLAS thread" \
      || { fail "task $t: the ranks' masks and threads:"; echo "$probes"; }
  done
  times=$(started_after "$arr" "$post")
  after=$?
  [ "$(field "$post" JobState)" = COMPLETED ] && [ "$after" = 0 ] && pass "post job $post COMPLETED, $times" \
    || { fail "post job $post: $(field "$post" JobState), $times"; cat "$work"/ok/logs/gorp-post-"$post".out; }
  log=$work/ok/logs/gorp-post-$post.out
  [ "$(grep -cE "^[12] +complete +$work/ok/$(basename "$work")-(a-seqft|b-inclora)-seed2, " "$log")" = 2 ] \
    && pass "its report: tasks 1 and 2 complete, with their run directories" \
    || { fail "the post job's report:"; cat "$log"; }
  tables=$work/ok/tables/tables.md
  [ -s "$tables" ] && grep -q seqft "$tables" && grep -q inclora "$tables" \
    && pass "tables.md lists both runs (seqft, inclora)" \
    || { fail "tables.md missing or without both runs:"; cat "$tables" "$log"; }
else
  fail "the array $arr or its post job $post did not end within $ceiling s"
fi

# --- --cpus-per-task=2: the rank gets both cores and two threads (Slurm >= 22.05 would give srun's
# step one core per task without the launcher's --cpus-per-task) ----------------------------------
if wait_job "$bind" "$work/bind.log"; then
  probe=$(grep "^probe rank" "$work/bind.log")
  [ "$(field "$bind" JobState)" = COMPLETED ] \
    && grep -q "srun --mpi=pmix --ntasks=1 --cpus-per-task=2 --cpu-bind=cores" "$work/bind.log" \
    && [ "$probe" = "probe rank 0: Cpus_allowed_list:0-1 OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2" ] \
    && pass "--cpus-per-task=2: COMPLETED, the rank's mask is both cores, OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=2" \
    || { fail "--cpus-per-task=2 job $bind: $(field "$bind" JobState), inside: ${probe:-no probe line}"; grep gorp_launch "$work/bind.log"; }
else
  fail "the binding job $bind did not end within $ceiling s"
fi

# --- checkpoint and requeue -----------------------------------------------------------------------
# signal once task 2 is training (a progress line of it); the time limit sends the same USR1
in_task2() { awk '/^task 2\/2/ { t = 1 } t && / step / { n++ } END { exit !(n >= 2) }' "$work/long.log"; }
in_task2_or_done() { in_task2 || all_done "$long"; }
wait_until "job $long in task 2" in_task2_or_done
if ! in_task2 || all_done "$long"; then
  fail "job $long was not inside task 2 to be signalled:"; job_state "$long" "$work/long.log"
elif scancel --signal=USR1 --batch "$long"; then
  # the uninterrupted reference (queued with it) measures how long this run takes here and now
  if wait_job "$ref" "$work/ref.log"; then
    ref_s=$(seconds "$ref")
    ceiling=$((5 * ref_s + 60))
    echo "    the uninterrupted run took $ref_s s: waits are bounded by $ceiling s from here"
  fi
  if wait_job "$long" "$work/long.log"; then
    restarts=$(field "$long" Restarts)
    [ "$(field "$long" JobState)" = COMPLETED ] && [ "${restarts:-0}" -ge 1 ] \
      && pass "job $long requeued after USR1 (Restarts=$restarts) and COMPLETED" \
      || fail "job $long: $(field "$long" JobState), Restarts=${restarts:-?}"
    grep -q "stopped by a signal after step [0-9]* of task" "$work/long.log" \
      && grep -q "requeueing job $long" "$work/long.log" && grep -q "resuming syn-" "$work/long.log" \
      && pass "the log: checkpointed mid-task on the signal, requeued, resumed mid-task" \
      || { fail "the log lacks checkpoint/requeue/resume:"; grep -E "gorp_launch|stopped|resuming" "$work/long.log"; }
    # afterany waits for the requeued job's last end, not the end of the attempt that was stopped
    log=$work/long/logs/gorp-post-$longpost.out
    if wait_job "$longpost" "$log"; then
      times=$(started_after "$long" "$longpost")
      after=$?
      [ "$(field "$longpost" JobState)" = COMPLETED ] && [ "$after" = 0 ] \
        && grep -qE "^1 +complete +$work/long/" "$log" \
        && pass "its post job $longpost waited for the requeued run: COMPLETED, $times" \
        || { fail "post job $longpost of the requeued job: $(field "$longpost" JobState), $times"; cat "$log"; }
    else
      fail "the requeued job's post job $longpost did not end within $ceiling s"
    fi
  else
    fail "the signalled job $long did not end within $ceiling s"
  fi
else
  fail "scancel --signal=USR1 --batch $long refused"
fi
if all_done "$ref" && [ "$(field "$ref" JobState)" = COMPLETED ] \
  && grep -q "mpirun -np 2" "$work/ref.log"; then
  pass "reference job $ref (GORP_LAUNCHER=mpirun) COMPLETED uninterrupted"
  # results.h5, model.h5 and the last checkpoint (its LoRA adapters: inclora's base is frozen, and
  # this tiny model's accuracies are zero) equal bit for bit, once the adapters are shown nonzero
  name=$(basename "$work")-long-inclora-seed2
  same=$("$GORP_PYTHON" - "$work/long/$name" "$work/ref/$name" <<'PY'
import os, sys, h5py, numpy as np
resumed, whole = sys.argv[1:3]
def arrays(path):
    with h5py.File(path, "r") as f:
        out = {}
        f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
    return out
def last_checkpoint(run):
    ck = os.path.join(run, "checkpoints")
    return os.path.join("checkpoints", open(os.path.join(ck, "LATEST")).read().strip())
try:  # each run's own last checkpoint: the signal's save numbers the later ones one further
    pairs = [("results.h5",) * 2, ("model.h5",) * 2, (last_checkpoint(resumed), last_checkpoint(whole))]
    files = {p[1]: (arrays(os.path.join(resumed, p[0])), arrays(os.path.join(whole, p[1])))
             for p in pairs}
except OSError as e:
    sys.exit(print(f"missing: {e}"))
last = files[pairs[2][1]][1]
b = [k for k in last if k.startswith("lora/") and k.endswith("/B")]
if not b or not all(np.abs(last[k]).max() > 0 for k in b):
    sys.exit(print(f"no signal: LoRA B in {pairs[2][1]}: {len(b)}, some all zero"))
diff = []
for name, (a, w) in files.items():
    if a.keys() != w.keys():
        diff.append(f"{name}: datasets differ")
    diff += [f"{name}:{k}" for k in a if k in w and not np.array_equal(a[k], w[k], equal_nan=True)]
print(f"equal ({len(b)} nonzero LoRA B)" if not diff else "differ: " + " ".join(diff[:10]))
PY
)
  [[ $same == equal* ]] && pass "the requeued run's acc_matrix, model.h5 and last checkpoint equal the uninterrupted run's: $same" \
    || fail "requeued vs uninterrupted run: $same"
else
  fail "reference job $ref:"; job_state "$ref" "$work/ref.log"
fi

# --- scancel ends a job for good: gorp checkpoints on the SIGTERM, but only USR1 requeues ------------
cancelled=$(GORP_RUN_ROOT=$work/cancel submit "${few[@]}" --array=1 --output="$work/cancel.log" \
  jobs/clbench_standard.sbatch "$work/long.ini")
training() { grep -q " step " "$work/cancel.log" || all_done "$cancelled"; }
wait_until "job $cancelled training" training
scancel "$cancelled"
# past the requeue hold (cred_expire = 5 s): a requeued job would be back by then
if wait_job "$cancelled" "$work/cancel.log" && sleep 8 && all_done "$cancelled"; then
  [ "$(field "$cancelled" JobState)" = CANCELLED ] && [ "$(field "$cancelled" Restarts)" = 0 ] \
    && pass "scancel while training: job $cancelled CANCELLED, not requeued" \
    || { fail "scancel: job $cancelled $(field "$cancelled" JobState) Restarts=$(field "$cancelled" Restarts)"; grep gorp_launch "$work/cancel.log"; }
else
  fail "the cancelled job $cancelled came back: $(field "$cancelled" JobState) Restarts=$(field "$cancelled" Restarts)"
  grep gorp_launch "$work/cancel.log"
fi

# --- a broken config fails the job, no requeue -----------------------------------------------------
if wait_job "$bad" "$work/bad.log"; then
  [ "$(field "$bad" JobState)" = FAILED ] && [ "$(field "$bad" Restarts)" = 0 ] \
    && [ "$(field "$bad" ExitCode)" = 2:0 ] && grep -q "batch_size" "$work/bad.log" \
    && pass "broken config: job $bad FAILED with exit 2 naming the key, not requeued" \
    || { fail "broken config: job $bad $(field "$bad" JobState) Restarts=$(field "$bad" Restarts) ExitCode=$(field "$bad" ExitCode)"; cat "$work/bad.log"; }
else
  fail "the broken job $bad did not end within $ceiling s"
fi

# --- failed array tasks: the post job runs after all of them and reports each -----------------------
log=$work/fail/logs/gorp-post-$failpost.out
if wait_job "$failed" "$work/fail/logs/gorp-std-${failed}_*.out" && wait_job "$failpost" "$log"; then
  states=$(for t in 1 2 3 4; do field "${failed}_$t" JobState; done | tr '\n' ' ')
  [ "$states" = "COMPLETED FAILED FAILED FAILED " ] && pass "array $failed: task 1 COMPLETED, 2-4 FAILED" \
    || fail "array $failed: $states"
  times=$(started_after "$failed" "$failpost")
  after=$?
  d=$work/fail/$(basename "$work")
  [ "$after" = 0 ] && [ "$(field "$failpost" JobState)" = FAILED ] && [ "$(field "$failpost" ExitCode)" = 1:0 ] \
    && pass "its post job $failpost ran after every task (afterany) and FAILED with exit 1: $times" \
    || { fail "post job $failpost: $(field "$failpost" JobState) $(field "$failpost" ExitCode), $times"; cat "$log"; }
  grep -qE "^1 +complete +$d-a-seqft-seed2, $work/a.ini$" "$log" \
    && grep -qE "^2 +incomplete +$d-nan-seqft-seed3, $work/nan.ini: the last row .*not fully measured" "$log" \
    && grep -qE "^3 +missing +$d-nomodel-seqft-seed2, $work/nomodel.ini: no results.h5$" "$log" \
    && grep -qE "^4 +missing +-, -: no config for this array index" "$log" \
    && grep -q "3 of 4 array task(s) without a complete run: task(s) 2 3 4" "$log" \
    && pass "its report names each task's state, run directory and config: 1 complete, 2 incomplete, 3 and 4 missing" \
    || { fail "the post job's report:"; cat "$log"; }
  # the table of what exists: the complete run with its metrics, the partial one listed apart
  tables=$work/fail/tables/tables.md
  [ -s "$tables" ] && grep -q "^| seqft | order1 | 2 | complete |" "$tables" \
    && grep -q "^| seqft | order1 | 3 | partial" "$tables" \
    && pass "and still writes the tables of the runs that exist (the complete one averaged)" \
    || { fail "tables after failed tasks:"; cat "$tables" "$log"; }
else
  fail "the failing array $failed or its post job $failpost did not end within $ceiling s"
fi

# --- the GPU script: each rank gets a GPU of its own and run.backend=cuda ------------------------
if [ -z "$gres" ]; then
  echo "    jobs/llama2_7b_gpu.sbatch not submitted: mknod of the stand-in GPUs failed (no CAP_MKNOD)"
elif [ -n "$gpu" ] && wait_job "$gpu" "$work/gpu.log"; then
  probes=$(grep '^gpu probe rank' "$work/gpu.log" | sort)
  devs=$(sed -n 's/.* CUDA_VISIBLE_DEVICES=\([^ ]*\) .*/\1/p' <<<"$probes" | sort -u | tr '\n' ' ')
  [ "$(field "$gpu" JobState)" = COMPLETED ] && [ "$(wc -l <<<"$probes")" = 4 ] \
    && [[ $devs =~ ^([0-9] ){4}$ ]] && [ "$(grep -c -- '--set run.backend=cuda' <<<"$probes")" = 4 ] \
    && grep -q "srun --mpi=pmix --ntasks=4 --cpus-per-task=1" "$work/gpu.log" \
    && pass "llama2_7b_gpu.sbatch on a node of 4 GPUs: COMPLETED, srun gave each of the 4 ranks one GPU of" \
      "its own (CUDA_VISIBLE_DEVICES $devs) and each got --set run.backend=cuda" \
    || { fail "llama2_7b_gpu.sbatch job $gpu: $(field "$gpu" JobState), the ranks saw:"; cat "$work/gpu.log"; }
else
  fail "the GPU job ${gpu:-(not submitted)} did not end within $ceiling s"
fi

# --- world size against tp x dp -------------------------------------------------------------------
if wait_job "$mis" "$work/mis.log"; then
  [ "$(field "$mis" JobState)" = FAILED ] \
    && grep -q "the MPI job has 2 ranks, but parallel.tp x parallel.dp = 1 x 1 = 1" "$work/mis.log" \
    && pass "--ntasks=2 with a 1 x 1 config: FAILED with gorp's world-size message" \
    || { fail "mismatch job $mis: $(field "$mis" JobState)"; cat "$work/mis.log"; }
else
  fail "the mismatch job $mis did not end within $ceiling s"
fi
finish
