#!/usr/bin/env bash
# Checkpoints that users can trust: a run that crashes inside a checkpoint save leaves the earlier
# checkpoints intact and resumes; a damaged (flipped bytes in data or metadata), truncated or
# incomplete LATEST checkpoint, or a FIFO in its place, is detected by name and the run falls back
# to the previous good one; inspect --verify refuses exactly what a resume refuses; a checkpoint of
# another config is refused naming the differing keys (safe keys only with --force-config); a
# missing LATEST (or a FIFO there) is reported and the newest good checkpoint used; numbers go on
# past 999999; h5ls reads a checkpoint. ckpt_fuzz.sh flips metadata bytes wholesale.
. "$(dirname "$0")/lib.bash"

small_run_config "$work/c.ini"
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

same_as_reference() { same_run "$work/run" "$reference"; }

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

# a flipped byte in the HDF5 metadata (the object header of a dataset), not in its data: HDF5's
# metadata checksum fails, the file is named and skipped (it used to end in exit 5, "HDF5 call
# failed: H5Oopen", naming no file)
crash_at 4
latest="$ck/$(cat "$ck/LATEST")"
"$GORP_PYTHON" - "$latest" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    addr = h5py.h5o.get_info(f["model/model.norm.weight"].id).addr
with open(sys.argv[1], "r+b") as f:
    f.seek(addr + 12); b = f.read(1); f.seek(addr + 12); f.write(bytes([b[0] ^ 0xFF]))
PY
expect_error "inspect --verify names a checkpoint with damaged metadata" "$latest" \
  "$GORP" inspect "$latest" --verify
if "$GORP" run "$work/c.ini" >"$work/meta.log" 2>&1 && grep -q "$latest.*damaged" "$work/meta.log" \
  && grep -q "falling back to" "$work/meta.log" && same_as_reference; then
  pass "flipped metadata byte: named, fell back to the previous checkpoint, same final result"
else
  fail "flipped metadata byte:"; tail -8 "$work/meta.log"
fi

# inspect --verify accepts exactly what a resume accepts: a checkpoint without /config, or
# without a dataset that its position needs, is refused by both
for what in config optim/lora/exp_avg; do
  crash_at 4
  latest="$ck/$(cat "$ck/LATEST")"
  "$GORP_PYTHON" -c "import sys, h5py; del h5py.File(sys.argv[1], 'r+')[sys.argv[2]]" "$latest" "$what"
  expect_error "inspect --verify refuses a checkpoint without /$what" "/$what" \
    "$GORP" inspect "$latest" --verify
  if "$GORP" run "$work/c.ini" >"$work/missing.log" 2>&1 && grep -q "falling back to" "$work/missing.log" \
    && same_as_reference; then
    pass "without /$what: the resume falls back too, same final result"
  else
    fail "without /$what:"; tail -8 "$work/missing.log"
  fi
done

# a FIFO in place of LATEST's checkpoint, or of LATEST: only regular files are opened (a FIFO
# used to block the resume in fopen, out of reach of SIGTERM)
crash_at 4
latest="$ck/$(cat "$ck/LATEST")"
rm "$latest" && mkfifo "$latest"
if timeout -k 5 120 "$GORP" run "$work/c.ini" >"$work/fifo.log" 2>&1 \
  && grep -q "$latest is not a regular file" "$work/fifo.log" \
  && grep -q "falling back to" "$work/fifo.log" && same_as_reference; then
  pass "a FIFO as LATEST's checkpoint: named, fell back, same final result"
else
  fail "a FIFO as LATEST's checkpoint:"; tail -8 "$work/fifo.log"
fi
crash_at 4
rm "$ck/LATEST" && mkfifo "$ck/LATEST"
if timeout -k 5 120 "$GORP" run "$work/c.ini" >"$work/fifo.log" 2>&1 \
  && grep -q "LATEST is missing, empty or not a regular file" "$work/fifo.log" && same_as_reference; then
  pass "a FIFO as LATEST: reported, newest good checkpoint used, same final result"
else
  fail "a FIFO as LATEST:"; tail -8 "$work/fifo.log"
fi

# checkpoint numbers past 999999: the name grows a digit, the numbering goes on (the 7-digit
# names used to be invisible, so ckpt_1000000.h5 was overwritten by every save)
crash_at 4
mv "$ck/ckpt_000003.h5" "$ck/ckpt_999999.h5" && rm "$ck"/ckpt_00000[12].h5
echo ckpt_999999.h5 >"$ck/LATEST"
if "$GORP" run "$work/c.ini" >"$work/wide.log" 2>&1 && same_as_reference \
  && [ "$(ls "$ck" | grep -c '^ckpt_.*\.h5$')" -eq 3 ] && [ ! -e "$ck/ckpt_999999.h5" ] \
  && grep -Eq '^ckpt_100000[2-9]\.h5$' "$ck/LATEST"; then
  pass "numbers past 999999: $(cat "$ck/LATEST") is the newest of 3 kept, same final result"
else
  fail "numbers past 999999: LATEST $(cat "$ck/LATEST"), files: $(ls "$ck" | tr '\n' ' ')"
  tail -4 "$work/wide.log"
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
