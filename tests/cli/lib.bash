# Helpers for the tests/cli/*.sh tests (sourced, not run). Each test counts checks and ends with
# the plain closing line "N passed, M failed".
set -uo pipefail
: "${GORP:?GORP must name the gorp binary}"
: "${GORP_DATA:?GORP_DATA must name the shared data folder}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
n_pass=0
n_fail=0

pass() { echo "PASS $*"; n_pass=$((n_pass + 1)); }
fail() { echo "FAIL $*"; n_fail=$((n_fail + 1)); }

# expect_error NAME PATTERN CMD...: CMD must exit non-zero and print PATTERN (grep -E) on stderr.
expect_error() {
  local name=$1 pattern=$2
  shift 2
  if "$@" >"$work/stdout.txt" 2>"$work/err"; then
    fail "$name: exited 0"
  elif grep -Eq -- "$pattern" "$work/err"; then
    pass "$name"
  else
    fail "$name: stderr lacks /$pattern/:"
    sed 's/^/    /' "$work/err"
  fi
}

# mpi_unit_test BIN_NAME WHAT TIMEOUT: runs the C unit test binary BIN_NAME (in
# $GORP_TEST_BIN_DIR, or $(dirname "$GORP")/tests) under mpirun with p = 1, 2, 3, 4 ranks (p = 3
# makes every split uneven), each run under a timeout so that a rank left waiting fails instead of
# blocking the suite; one PASS per p when the run ends with "N passed, 0 failed". Leak checking
# is off because Open MPI leaks by design (TOOLCHAIN.md).
mpi_unit_test() {
  local bin="${GORP_TEST_BIN_DIR:-$(dirname "$GORP")/tests}/$1" what=$2 limit=$3 p log rc summary
  export OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
  if [ ! -x "$bin" ]; then
    fail "no test binary at $bin (build the $1 target, or set GORP_TEST_BIN_DIR)"
    return
  elif ! command -v mpirun >/dev/null; then
    fail "mpirun is not on PATH"
    return
  fi
  for p in 1 2 3 4; do
    log="$work/p$p.log"
    TMPDIR="$work" timeout -k 10 "$limit" mpirun --allow-run-as-root --oversubscribe -np "$p" \
      "$bin" >"$log" 2>&1
    rc=$?
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
      fail "p=$p: no result within $limit s (a rank left waiting?)"
      tail -20 "$log" | sed 's/^/    /'
    elif [ "$rc" -eq 0 ] && [[ "$summary" =~ ^[1-9][0-9]*\ passed,\ 0\ failed$ ]]; then
      pass "p=$p: $what ($summary)"
    else
      fail "p=$p: exit $rc, ${summary:-no summary line}"
      { grep -E '^FAIL' "$log" || tail -20 "$log"; } | sed 's/^/    /'
    fi
  done
}

# small_run_config FILE: the small real-data run that the checkpoint and fault tests share (one
# layer, SST-2 -> CB of mini, gorp with rank-4 full-rank targets, a checkpoint every 2 steps, 3
# kept, out_dir "run" beside FILE). A test's own keys go in a config that includes FILE.
small_run_config() {
  cat >"$1" <<INI
[run]
out_dir = run
checkpoint_every = 2
checkpoint_keep = 3
method = gorp
log_every = 100
[model]
hidden_size = 24
intermediate_size = 40
num_layers = 1
num_heads = 2
max_seq = 256
[data]
root = $GORP_DATA/CL_Benchmark/mini
instructions = $GORP_DATA/CL_Benchmark/instruction_config.json
tasks = SST-2, CB
max_source_length = 24
max_train_per_task = 24
max_test_per_task = 2
[train]
batch_size = 4
[full]
rank = 4
[eval]
max_new_tokens = 3
INI
}

# gate_run_config FILE: the short GORP run that the memory-saving options are checked on (a random
# 3-layer model, SST-2 -> agnews of mini, LoRA q, v r = 4 and a rank-2 full-rank gate refreshed
# every step, out_dir off). A test's own keys go in a config that includes FILE.
gate_run_config() {
  cat >"$1" <<INI
[run]
out_dir = off
method = gorp
log_every = 1
[model]
hidden_size = 32
intermediate_size = 48
num_layers = 3
num_heads = 4
num_kv_heads = 2
max_seq = 512
init_std = 0.3
[data]
root = $GORP_DATA/CL_Benchmark/mini
instructions = $GORP_DATA/CL_Benchmark/instruction_config.json
tasks = SST-2, agnews
max_source_length = 64
max_train_per_task = 8
[train]
batch_size = 4
[lora]
targets = q, v
r = 4
[full]
targets = gate
optimizer = lowrank
rank = 2
update_gap = 1
INI
}

# same_run RUN REF: two run directories hold the same state, bit for bit: model.h5, results.h5
# and the datasets of each one's newest checkpoint (the adapters, bases and moments: state that is
# not zero, where the accuracy matrix of a tiny run may be: asserted on REF's LoRA B factors and
# Adam moments before comparing, so two empty runs never pass as equal).
same_run() {
  "$GORP_PYTHON" - "$1" "$2" <<'PY'
import sys, h5py, numpy as np
def ds(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[...]) if isinstance(o, h5py.Dataset) else None)
    return out
def last(run):
    return f"{run}/checkpoints/" + open(f"{run}/checkpoints/LATEST").read().strip()
run, ref = sys.argv[1:]
state = ds(last(ref))
signal = [k for k in state if k.endswith("/B") or "/exp_avg" in k]
if not signal or any(not np.abs(state[k]).max() > 0 for k in signal):
    sys.exit(f"{last(ref)} carries no signal (LoRA B / Adam moments zero or absent)")
for a, b in ((f"{run}/model.h5", f"{ref}/model.h5"), (f"{run}/results.h5", f"{ref}/results.h5"),
             (last(run), last(ref))):
    x, y = ds(a), ds(b)
    if x.keys() != y.keys() or any(not np.array_equal(x[k], y[k], equal_nan=True) for k in x):
        sys.exit(f"{a} differs from {b}")
PY
}

finish() {
  echo "$n_pass passed, $n_fail failed"
  [ "$n_fail" -eq 0 ]
}
