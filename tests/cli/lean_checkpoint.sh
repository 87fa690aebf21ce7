#!/usr/bin/env bash
# Lean checkpoints (docs/CHECKPOINT.md "Lean checkpoints"): a run whose model.init is a model file
# and whose base is partly frozen stores only the trainable tensors and refers to the base by
# path and checksum. Checked: which tensors a gorp and an inclora checkpoint hold (derived from
# the trainer: gorp's full-rank targets, none for inclora), a crash inside a save resumes
# bit-identical to the uninterrupted run, seqft and model.init = random stay full, gorp inspect
# shows the reference and --verify accepts it; a base that changed (other weights under the same
# name), went missing, or is swapped with --force-config is refused naming the path and both
# checksums, non-zero exit, the checkpoints untouched; a lean checkpoint loads as a model (the
# same logits as the full file it stands for) and as model.init, at tp = 1 and tp = 2.
. "$(dirname "$0")/lib.bash"

small_run_config "$work/c.ini"
export OMP_NUM_THREADS=1
# the base: seqft from random weights on SST-2 (a full model file)
"$GORP" run "$work/c.ini" --set model.init=random --set run.method=seqft --set data.tasks=SST-2 \
  --set run.out_dir="$work/base" >"$work/base.log" 2>&1 || { fail "base run"; tail "$work/base.log"; }
base="$work/base/model.h5"
cat >"$work/l.ini" <<INI
include = c.ini
[model]
init = $base
INI
ck="$work/run/checkpoints"
latest() { echo "$1/checkpoints/$(cat "$1/checkpoints/LATEST")"; }

# what a checkpoint holds under /model and whether it has /base
holds() {
  "$GORP_PYTHON" - "$1" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    print(("base " if "base" in f else "full ") + " ".join(sorted(f["model"].keys())))
PY
}

for method in gorp inclora; do
  ref="$work/ref-$method"
  "$GORP" run "$work/l.ini" --set run.method=$method --set run.out_dir="$ref" >"$work/ref.log" 2>&1 \
    || { fail "$method: reference run"; tail "$work/ref.log"; continue; }
  want="base model.layers.0.mlp.gate_proj.weight" # gorp: its full-rank target (full.targets = gate)
  [ $method = inclora ] && want="base "            # adapters only: no weight of the model
  got=$(holds "$(latest "$ref")")
  [ "$got" = "$want" ] && pass "$method: a checkpoint holds /base and the trainable tensors only ($got)" \
    || fail "$method: checkpoint holds '$got', expected '$want'"
  rm -rf "$work/run"
  (GORP_FAULT_SAVE_ABORT=4 "$GORP" run "$work/l.ini" --set run.method=$method >/dev/null 2>&1) 2>/dev/null
  if "$GORP" run "$work/l.ini" --set run.method=$method >"$work/resume.log" 2>&1 \
    && grep -q "resuming from" "$work/resume.log" && same_run "$work/run" "$ref"; then
    pass "$method: resumed from a lean checkpoint after a crash, bit-identical to the uninterrupted run"
  else
    fail "$method: resume from a lean checkpoint"; tail -5 "$work/resume.log"
  fi
done

# seqft trains every tensor and model.init = random has no file: both stay full
for set in "run.method=seqft" "model.init=random"; do
  "$GORP" run "$work/l.ini" --set "$set" --set run.out_dir="$work/full" --set data.tasks=SST-2 \
    >"$work/full.log" 2>&1 || fail "$set run"
  got=$(holds "$(latest "$work/full")")
  [[ "$got" == "full "*"model.embed_tokens.weight"* ]] && pass "$set: checkpoints stay full" \
    || fail "$set: checkpoint holds '$got'"
  rm -rf "$work/full"
done

lean=$(latest "$work/ref-gorp")
"$GORP" inspect "$lean" >"$work/inspect.txt" 2>&1 \
  && grep -q "base model file $base (model.init $base), checksum 0x[0-9a-f]\{8\}: found, matches" \
    "$work/inspect.txt" && pass "inspect shows the base reference, found and matching" \
  || { fail "inspect of a lean checkpoint:"; head -5 "$work/inspect.txt"; }
"$GORP" inspect "$lean" --verify >"$work/verify.txt" 2>&1 && grep -q "a resume accepts it" "$work/verify.txt" \
  && pass "inspect --verify accepts a lean checkpoint" || { fail "inspect --verify:"; tail -5 "$work/verify.txt"; }

# a lean checkpoint as a model: the same logits as the full file it stands for (base + its tensors)
"$GORP_PYTHON" - "$lean" "$base" "$work/full.h5" <<'PY'
import sys, shutil, h5py
lean, base, full = sys.argv[1:]
shutil.copy(lean, full)
with h5py.File(full, "r+") as f, h5py.File(base, "r") as b:
    del f["base"]
    for name, d in b["model"].items():
        if name not in f["model"]:
            f["model"].create_dataset(name, data=d[...])
            f["model"][name].attrs["crc32"] = d.attrs["crc32"]
PY
printf "5 6 7 8 9\n10 11 12 13 14\n" >"$work/ids.txt"
if "$GORP" logits --model "$lean" --tokens "$work/ids.txt" --out "$work/lean_logits.h5" >"$work/l1.txt" 2>&1 \
  && "$GORP" logits --model "$work/full.h5" --tokens "$work/ids.txt" --out "$work/full_logits.h5" >"$work/l2.txt" 2>&1 \
  && "$GORP_PYTHON" -c 'import sys, h5py, numpy as np
a, b = (h5py.File(p, "r")["logits"][...] for p in sys.argv[1:])
sys.exit(not (a.size and np.array_equal(a, b)))' "$work/lean_logits.h5" "$work/full_logits.h5"; then
  pass "a lean checkpoint loads as a model: the logits of the full file it stands for"
else
  fail "lean checkpoint as --model:"; cat "$work/l1.txt" "$work/l2.txt"
fi
"$GORP" run "$work/l.ini" --set model.init="$lean" --set run.out_dir="$work/chain" \
  --set data.tasks=CB >"$work/chain.log" 2>&1 \
  && [ "$(holds "$(latest "$work/chain")" | cut -d' ' -f1)" = base ] \
  && "$GORP" inspect "$(latest "$work/chain")" --verify >/dev/null 2>&1 \
  && pass "a lean checkpoint as model.init: the run's checkpoints are lean on it and verify" \
  || { fail "lean checkpoint as model.init"; tail -n 3 "$work/chain.log"; }

# tp = 2: each rank reads its shard of the base through the lean checkpoint (Megatron layout)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
if timeout 300 mpirun --allow-run-as-root --oversubscribe -np 2 "$GORP" run "$work/l.ini" \
  --set model.init="$lean" --set run.out_dir="$work/chain2" --set data.tasks=CB --set parallel.tp=2 \
  >"$work/chain2.log" 2>&1 && [ -n "$(grep "loss curve" "$work/chain.log")" ] \
  && [ "$(grep "loss curve" "$work/chain.log")" = "$(grep "loss curve" "$work/chain2.log")" ]; then
  pass "tp = 2 on a lean checkpoint as model.init: the loss curve of tp = 1"
else
  fail "tp = 2 on a lean model.init:"; tail -n 5 "$work/chain2.log"
fi

# the base changes under its name: other weights (a valid file: data and crc32 updated)
crashed_run() {
  rm -rf "$work/run"
  (GORP_FAULT_SAVE_ABORT=4 "$GORP" run "$work/l.ini" >/dev/null 2>&1) 2>/dev/null
  (cd "$ck" && md5sum -- * >"$work/before.md5")
}
untouched() { (cd "$ck" && md5sum -c --quiet "$work/before.md5" >/dev/null 2>&1) && [ "$(ls "$ck" | wc -l)" -eq "$(wc -l <"$work/before.md5")" ]; }
crashed_run
cp "$base" "$work/base.orig"
"$GORP_PYTHON" - "$base" <<'PY'
import sys, zlib, h5py, numpy as np
with h5py.File(sys.argv[1], "r+") as f:
    d = f["model/model.embed_tokens.weight"]
    x = d[...]; x[3, 5] += 0.25; d[...] = x
    d.attrs["crc32"] = np.uint32(zlib.crc32(x.astype("<f4").tobytes()))
PY
expected=$(grep -o "checksum 0x[0-9a-f]*" "$work/inspect.txt" | head -1 | cut -d' ' -f2)
expect_error "a changed base is refused naming the path and the expected and found checksums" \
  "stores only the trained weights; the others are those of the base model file $base .*with checksum $expected, but this run's model.init $base holds other weights \(checksum 0x[0-9a-f]{8}\)" \
  "$GORP" run "$work/l.ini"
untouched && pass "refused resume: the checkpoints are untouched" || fail "the checkpoints changed"
grep -q "found, but it holds OTHER weights" <("$GORP" inspect "$(latest "$work/run")") \
  && pass "inspect says the base holds other weights" || fail "inspect with a changed base"
expect_error "inspect --verify refuses a checkpoint whose base changed" "holds other weights" \
  "$GORP" inspect "$(latest "$work/run")" --verify

# the base is missing, then found elsewhere: --force-config resumes only on the same weights
mv "$base" "$work/moved.h5"
expect_error "a missing base is refused naming it" "$base" "$GORP" run "$work/l.ini"
untouched && pass "missing base: the checkpoints are untouched" || fail "the checkpoints changed"
grep -q "NOT FOUND" <("$GORP" inspect "$(latest "$work/run")") && pass "inspect says the base is not found" \
  || fail "inspect with a missing base"
expect_error "--force-config with a moved base that holds other weights is refused" "holds other weights" \
  "$GORP" run "$work/l.ini" --set model.init="$work/moved.h5" --force-config
cp "$work/base.orig" "$work/moved.h5"
if "$GORP" run "$work/l.ini" --set model.init="$work/moved.h5" --force-config >"$work/moved.log" 2>&1 \
  && same_run "$work/run" "$work/ref-gorp"; then
  pass "--force-config with the base moved (same weights) resumes bit-identical"
else
  fail "moved base:"; tail -n 3 "$work/moved.log"
fi
finish
