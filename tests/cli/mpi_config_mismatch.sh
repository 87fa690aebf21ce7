#!/usr/bin/env bash
# Every rank of one job must run the same config (dist_init compares the full config hash before
# anything collective): an MPMD launch whose second rank gets another train.lr used to exit 0 with
# shards trained at different rates, one with another run.out_dir deadlocked inside H5Fcreate.
# Now both fail on every rank, naming the rank and its first differing key, and nothing is
# trained or written; gorp pretrain checks the same. The same config named from two working
# directories (one path relative) is one config and runs. Each launch runs under a timeout, so a
# regression fails instead of hanging the suite.
. "$(dirname "$0")/lib.bash"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
command -v mpirun >/dev/null || { fail "mpirun is not on PATH"; finish; exit; }

cfg="$work/cfg"
mkdir -p "$cfg/sub"
cat >"$cfg/k.ini" <<INI
[run]
out_dir = out
log_every = 100
[model]
hidden_size = 32
intermediate_size = 40
num_layers = 1
num_heads = 2
max_seq = 128
[data]
format = synthetic
tasks = syn-dbpedia, syn-amazon
synthetic_train = 16
synthetic_test = 4
[train]
batch_size = 4
max_steps = 3
[eval]
max_new_tokens = 4
[parallel]
tp = 2
[pretrain]
out = base.h5
steps = 3
batch_size = 4
warmup = 1
INI

# mpmd NAME PATTERN [mpirun app contexts...]: the launch must fail (not time out) and print
# PATTERN (grep -E), and no rank may have trained (no results.h5, no base.h5)
mpmd() {
  local name=$1 pattern=$2 rc
  shift 2
  (cd "$cfg" && timeout -k 10 120 mpirun --oversubscribe "$@" >"$work/log" 2>&1)
  rc=$?
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    fail "$name: no result within 120 s (a rank left waiting)"
  elif [ $rc -eq 0 ]; then
    fail "$name: exited 0"
  elif ! grep -Eq -- "$pattern" "$work/log"; then
    fail "$name: exit $rc, output lacks /$pattern/:"; grep -v '^loaded' "$work/log" | head -20
  elif [ -e "$cfg/out/results.h5" ] || [ -e "$cfg/o2/results.h5" ] || [ -e "$cfg/base.h5" ]; then
    fail "$name: a rank trained and wrote results"
  else
    pass "$name (exit $rc)"
  fi
}

mpmd "train.lr differs on rank 1: refused, naming rank and key" \
  "rank 1: train\.lr = 0\.1 \(rank 0: 0\.001\)" \
  -np 1 "$GORP" run k.ini : -np 1 "$GORP" run k.ini --set train.lr=0.1
mpmd "run.out_dir differs on rank 1: refused, no deadlock" "rank 1: run\.out_dir = $cfg/o2" \
  -np 1 "$GORP" run k.ini : -np 1 "$GORP" run k.ini --set run.out_dir=o2
mpmd "gorp pretrain: pretrain.steps differs on rank 1, refused" \
  "rank 1: pretrain\.steps = 4 \(rank 0: 3\)" \
  -np 1 "$GORP" pretrain k.ini : -np 1 "$GORP" pretrain k.ini --set pretrain.steps=4
# rank 1 is the one that agrees with rank 0; rank 2 differs
mpmd "3 ranks, rank 2 differs: rank 1 is not blamed" "1 of 3 rank\(s\) differ.*" \
  -np 2 "$GORP" run k.ini --set parallel.tp=1 --set parallel.dp=3 : \
  -np 1 "$GORP" run k.ini --set parallel.tp=1 --set parallel.dp=3 --set lora.r=4
grep -q "rank 1: " "$work/log" && fail "rank 1 listed as differing" || pass "only rank 2 listed"

# one config, named from two folders: it runs
if (timeout -k 10 120 mpirun --oversubscribe -np 1 -wdir "$cfg" "$GORP" run k.ini : \
  -np 1 -wdir "$cfg/sub" "$GORP" run ../k.ini >"$work/same.log" 2>&1) \
  && [ -s "$cfg/out/results.h5" ]; then
  pass "the same config named k.ini and ../k.ini from two folders runs on both ranks"
else
  fail "same config, two spellings:"; grep -v '^loaded' "$work/same.log" | tail -10
fi
finish
