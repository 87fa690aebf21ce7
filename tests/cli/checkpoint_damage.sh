#!/usr/bin/env bash
# Checkpoints that users can trust: a run that crashes inside a checkpoint save leaves the earlier
# checkpoints intact and resumes; a damaged (flipped bytes) or truncated LATEST checkpoint is
# detected by name and the run falls back to the previous good one; a checkpoint of another config
# is refused naming the differing keys (safe keys only with --force-config); a missing LATEST is
# reported and the newest good checkpoint used; inspect --verify finds the damage; h5ls reads it.
. "$(dirname "$0")/lib.bash"

cat >"$work/c.ini" <<INI
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
ck="$work/run/checkpoints"
reference="$work/ref"

# the uninterrupted reference
"$GORP" run "$work/c.ini" --set run.out_dir="$reference" >"$work/ref.log" 2>&1 \
  || { fail "reference run"; cat "$work/ref.log"; }

crash_at() { # runs until the k-th save aborts
  rm -rf "$work/run"
  (GORP_FAULT_SAVE_ABORT=$1 "$GORP" run "$work/c.ini" >"$work/crash.log" 2>&1) 2>/dev/null
}

crash_at 4
[ $? -ne 0 ] && [ -s "$ck/ckpt_000003.h5" ] && [ ! -e "$ck/ckpt_000004.h5" ] \
  && grep -q ckpt_000003 "$ck/LATEST" && pass "a crash inside save 4 keeps checkpoints 1-3 and LATEST" \
  || fail "crash inside a save: $(ls "$ck")"
ls "$ck"/*.tmp >/dev/null 2>&1 && pass "the half-written save is a .tmp, never a checkpoint name" \
  || fail "no .tmp left by the crash (the fault point did not fire inside the write?)"

# model.h5, results.h5 and the last checkpoint (LoRA adapters, optimizer moments, GORP bases) equal
# the reference's bit for bit; the reference's LoRA B and moments must be nonzero (this tiny model's
# accuracies are all zero, so the results alone would prove nothing)
same_as_reference() {
  "$GORP_PYTHON" - "$work/run" "$reference" <<'PY'
import sys, h5py, numpy as np
def ds(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[...]) if isinstance(o, h5py.Dataset) else None)
    return out
# each run's own LATEST: a fallback numbers its later checkpoints past the damaged one
last = ["checkpoints/" + open(f"{run}/checkpoints/LATEST").read().strip() for run in sys.argv[1:3]]
ref = ds(f"{sys.argv[2]}/{last[1]}")
signal = [k for k in ref if k.endswith("/B") or "/exp_avg" in k]
if not signal or any(not np.abs(ref[k]).max() > 0 for k in signal):
    sys.exit(f"the reference's {last[1]} carries no signal (LoRA B / moments zero or absent)")
for name in (("model.h5",) * 2, ("results.h5",) * 2, last):
    a, b = ds(f"{sys.argv[1]}/{name[0]}"), ds(f"{sys.argv[2]}/{name[1]}")
    if a.keys() != b.keys() or any(not np.array_equal(a[k], b[k], equal_nan=True) for k in a):
        sys.exit(f"{name[0]} differs")
PY
}

if "$GORP" run "$work/c.ini" >"$work/resume.log" 2>&1 && grep -q "resuming from" "$work/resume.log" \
  && same_as_reference; then
  pass "resumed after the crash, bit-identical to the uninterrupted run"
else
  fail "resume after crash:"; tail -5 "$work/resume.log"
fi

# flipped bytes inside the newest checkpoint's data
crash_at 4
latest="$ck/$(cat "$ck/LATEST")"
"$GORP_PYTHON" - "$latest" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    off = f["model/model.embed_tokens.weight"].id.get_offset()
with open(sys.argv[1], "r+b") as f:
    f.seek(off + 40); b = f.read(4); f.seek(off + 40); f.write(bytes(x ^ 0xFF for x in b))
PY
expect_error "inspect --verify names the damaged dataset" "embed_tokens.weight is damaged" \
  "$GORP" inspect "$latest" --verify
if "$GORP" run "$work/c.ini" >"$work/flip.log" 2>&1 && grep -q "is damaged" "$work/flip.log" \
  && grep -q "falling back to" "$work/flip.log" && same_as_reference; then
  pass "flipped bytes: named, fell back to the previous checkpoint, same final result"
else
  fail "flipped bytes:"; tail -8 "$work/flip.log"
fi

# a truncated newest checkpoint
crash_at 4
latest="$ck/$(cat "$ck/LATEST")"
truncate -s 3000 "$latest"
if "$GORP" run "$work/c.ini" >"$work/trunc.log" 2>&1 && grep -q "falling back to" "$work/trunc.log" \
  && same_as_reference; then
  pass "truncated checkpoint: fell back to the previous one, same final result"
else
  fail "truncated checkpoint:"; tail -8 "$work/trunc.log"
fi

# a missing LATEST
crash_at 4
rm "$ck/LATEST"
if "$GORP" run "$work/c.ini" >"$work/nolatest.log" 2>&1 && grep -q "LATEST is missing" "$work/nolatest.log" \
  && same_as_reference; then
  pass "missing LATEST: reported, newest good checkpoint used, same final result"
else
  fail "missing LATEST:"; tail -8 "$work/nolatest.log"
fi

# another config
crash_at 4
expect_error "another config is refused naming the key" "train.lr differ" \
  "$GORP" run "$work/c.ini" --set train.lr=0.5
cp -r "$GORP_DATA/CL_Benchmark/instruction_config.json" "$work/instr.json"
expect_error "a changed path needs --force-config" "data.instructions differ.*--force-config" \
  "$GORP" run "$work/c.ini" --set data.instructions="$work/instr.json"
if "$GORP" run "$work/c.ini" --set data.instructions="$work/instr.json" --force-config \
  >"$work/force.log" 2>&1 && same_as_reference; then
  pass "--force-config resumes with a changed path, same final result"
else
  fail "--force-config:"; tail -5 "$work/force.log"
fi

# standard tools read a checkpoint
latest="$ck/$(cat "$ck/LATEST")"
if h5ls -r "$latest" >"$work/h5ls.txt" 2>&1 && grep -q "^/gorp/" "$work/h5ls.txt" \
  && grep -q "^/lora/task_01/" "$work/h5ls.txt" && grep -q "^/optim/" "$work/h5ls.txt" \
  && grep -q "^/results/acc_matrix" "$work/h5ls.txt"; then
  pass "h5ls -r lists /model, /lora, /optim, /gorp and /results"
else
  fail "h5ls:"; head -20 "$work/h5ls.txt"
fi
finish
