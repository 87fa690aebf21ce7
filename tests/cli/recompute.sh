#!/usr/bin/env bash
# train.recompute changes memory, not numbers: a short gorp run (GORP with LoRA q, v under dropout
# and a rank-k full-rank gate, two real mini tasks, a random model) prints the same losses and
# accuracy matrix and writes the same model.h5 tensors, bit for bit, with train.recompute = true
# as with false, on one rank and on two tensor-parallel ranks; recompute with activation bases
# is refused at start-up naming both keys.
. "$(dirname "$0")/lib.bash"

gate_run_config "$work/gate.ini"
cat >"$work/run.ini" <<INI
include = gate.ini
[data]
max_test_per_task = 4
[train]
max_steps = 2
[lora]
dropout = 0.1
[eval]
max_new_tokens = 3
INI

# the loss lines and accuracy matrix of a run's log (without timings), its model.h5 tensors
numbers() { grep -E "step +[0-9]+/|loss curve|^after |^AP " "$work/$1.log" | sed 's/ *[0-9]* tok\/s.*//'; }
same_as() { # REF NAME WHAT
  local bad=""
  diff <(numbers "$1") <(numbers "$2") >/dev/null || bad="$bad losses/accuracy"
  "$GORP_PYTHON" - "$work/$1/model.h5" "$work/$2/model.h5" <<'EOF' || bad="$bad model.h5"
import sys
import h5py
import numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
names = []
a.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
assert len(names) > 10, names
for n in names:
    x, y = a[n][()], b[n][()]
    assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y, equal_nan=True), n
EOF
  if [ -z "$bad" ]; then pass "$3: losses, accuracy matrix and model.h5 bit for bit"; else
    fail "$3: differs in$bad"; diff <(numbers "$1") <(numbers "$2") | head -6; fi
}
run_with() { # NAME [--set ...]
  local name=$1
  shift
  "$GORP" run "$work/run.ini" --set run.out_dir="$work/$name" "$@" >"$work/$name.log" 2>&1 ||
    { fail "gorp run $name:"; tail -20 "$work/$name.log"; return 1; }
}
run_with off && run_with on --set train.recompute=true && same_as off on "one rank, recompute"
grep -q "train.recompute: activations of 1 of 3 layers kept" "$work/on.log" &&
  ! grep -q "train.recompute" "$work/off.log" && pass "the recomputing run keeps 1 of 3 layers" ||
  fail "no 'activations of 1 of 3 layers kept' line in the recomputing run only"
[ "$(numbers off | grep -c 'step ')" -ge 4 ] && pass "4 training steps logged" \
  || fail "too few step lines: $(numbers off)"

if command -v mpirun >/dev/null; then
  mpi_run() { # NAME [--set ...]: two tensor-parallel ranks
    local name=$1
    shift
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 300 mpirun \
      --allow-run-as-root --oversubscribe -np 2 "$GORP" run "$work/run.ini" \
      --set run.out_dir="$work/$name" --set parallel.tp=2 "$@" >"$work/$name.log" 2>&1 ||
      { fail "gorp run $name on 2 ranks:"; tail -20 "$work/$name.log"; return 1; }
  }
  mpi_run tp_off && mpi_run tp_on --set train.recompute=true &&
    same_as tp_off tp_on "two tensor-parallel ranks, recompute"
fi

expect_error "recompute with activation bases refused naming both keys" \
  "train.recompute = true does not go with gorp.basis_source = activation" \
  "$GORP" run "$work/run.ini" --set run.out_dir="$work/bad" --set train.recompute=true \
  --set gorp.basis_source=activation --set gorp.axis=input
finish
