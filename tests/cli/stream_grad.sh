#!/usr/bin/env bash
# full.stream_grad (docs/ALGORITHM.md, "Streamed gradients"): the rank-k targets' gradients are
# compressed layer by layer during backward and never held whole. A gorp run (LoRA q, v and a
# rank-2 full-rank gate refreshed every step, two real mini tasks so that task 2 is protected by
# task 1's shared space, clipping active, a large full.lr so that the gate moves) trains the same
# model with stream_grad = true as with false, to float rounding: the step's compressed gradient
# is scaled by the clipping factor instead of the gradient. Checked on the paper's axis and the
# input axis, at tp = 1, tp = 2 and dp = 2 (and dp = 2 with one sequence per step, so that one
# rank has no rows and streams zeros), on the losses, the gate's change and the optimizer's
# moments in the last checkpoint; and the gradient memory: the run reports the gate's gradients
# held as one layer's slot.
. "$(dirname "$0")/lib.bash"

gate_run_config "$work/gate.ini"
cat >"$work/run.ini" <<INI
include = gate.ini
[run]
checkpoint_every = 1
[data]
max_test_per_task = 2
[train]
grad_clip = 0.05
[full]
lr = 1e-2
[eval]
max_new_tokens = 2
INI
export OMP_NUM_THREADS=1

run_with() { # NAME RANKS [--set ...]
  local name=$1 np=$2
  shift 2
  local cmd=("$GORP" run "$work/run.ini" --set run.out_dir="$work/$name" "$@")
  [ "$np" -gt 1 ] && cmd=(timeout 300 mpirun --allow-run-as-root --oversubscribe -np "$np" "${cmd[@]}")
  "${cmd[@]}" >"$work/$name.log" 2>&1 || { fail "gorp run $name:"; tail -20 "$work/$name.log"; return 1; }
}
# the two runs' losses, gate changes (from the random initial weights, the same in both) and last
# checkpoint's optimizer moments agree to float rounding, relative to each one's own scale
close() { # A B WHAT
  "$GORP_PYTHON" - "$work/$1" "$work/$2" "$work/$1.log" "$work/$2.log" "$3" <<'PY'
import re, sys, h5py, numpy as np
a, b, la, lb, what = sys.argv[1:]
loss = lambda p: np.array([float(x) for x in re.findall(r"step +\d+/\d+ +loss ([0-9.]+)", open(p).read())])
x, y = loss(la), loss(lb)
assert len(x) == len(y) >= 4, (len(x), len(y))
worst = {"losses": np.abs(x - y).max() / np.abs(x).max()}
def last(run):
    return h5py.File(f"{run}/checkpoints/" + open(f"{run}/checkpoints/LATEST").read().strip(), "r")
fa, fb = last(a), last(b)
moments = []
fa.visititems(lambda n, o: moments.append(n) if isinstance(o, h5py.Dataset) and "gate" in n and n.startswith("optim") else None)
assert moments, "no optimizer state of the gate in the checkpoint"
for n in moments:
    p, q = fa[n][()], fb[n][()]
    if np.abs(p).max() > 0:
        worst[n] = np.abs(p - q).max() / np.abs(p).max()
ma, mb = h5py.File(f"{a}/model.h5", "r")["model"], h5py.File(f"{b}/model.h5", "r")["model"]
g = "model.layers.1.mlp.gate_proj.weight"
da, db = ma[g][()], mb[g][()]
worst["gate weights"] = np.abs(da - db).max() / np.abs(da).max()
name, w = max(worst.items(), key=lambda kv: kv[1])
print(f"{what}: worst relative difference {w:.1e} ({name}) over {len(worst)} quantities")
assert w < 2e-4, (name, w)
PY
}
same() { # A B WHAT
  if close "$@" >"$work/close.txt" 2>&1; then pass "$(cat "$work/close.txt")"; else
    fail "$3: stream_grad true and false differ"; tail -3 "$work/close.txt"; fi
}

run_with off 1 --set full.stream_grad=false && run_with on 1 && same off on "tp 1, paper axis"
grep -q "full.stream_grad: the gradients of 3 full-rank targets (4608 floats) are held as one layer's (1536 floats)" "$work/on.log" &&
  ! grep -q "full.stream_grad:" "$work/off.log" && pass "the streamed run holds one layer's gate gradient" ||
  fail "no full.stream_grad memory line: $(grep stream_grad "$work/on.log")"
run_with ioff 1 --set full.stream_grad=false --set gorp.axis=input &&
  run_with ion 1 --set gorp.axis=input && same ioff ion "tp 1, input axis"
if command -v mpirun >/dev/null; then
  for axis in paper input; do
    run_with tp-$axis 2 --set parallel.tp=2 --set gorp.axis=$axis &&
      run_with tpoff-$axis 2 --set parallel.tp=2 --set gorp.axis=$axis --set full.stream_grad=false &&
      same tpoff-$axis tp-$axis "tp 2, $axis axis"
  done
  run_with dp 2 --set parallel.dp=2 && run_with dpoff 2 --set parallel.dp=2 --set full.stream_grad=false &&
    same dpoff dp "dp 2"
  run_with dp1 2 --set parallel.dp=2 --set train.batch_size=1 &&
    run_with dp1off 2 --set parallel.dp=2 --set train.batch_size=1 --set full.stream_grad=false &&
    same dp1off dp1 "dp 2, one sequence per step (one rank streams zeros)"
fi

finish
