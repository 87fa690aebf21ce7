#!/usr/bin/env bash
# A short `gorp run` on real mini data (also run in the sanitizer build): it trains, evaluates,
# writes the model and prediction files, and the model file then serves `gorp logits`; bad input
# (token id >= vocab, missing/unknown config keys, unknown task) fails with a clear message.
. "$(dirname "$0")/lib.bash"

root="$GORP_DATA/CL_Benchmark/mini"
cat >"$work/run.ini" <<INI
[run]
out_dir = out
log_every = 2
[model]
hidden_size = 32
intermediate_size = 40
num_layers = 1
num_heads = 2
max_seq = 256
[data]
root = $root
instructions = $GORP_DATA/CL_Benchmark/instruction_config.json
tasks = SST-2
max_source_length = 32
max_train_per_task = 8
max_test_per_task = 3
[train]
batch_size = 4
epochs = 2
max_steps = 3
[eval]
max_new_tokens = 4
INI

if "$GORP" run "$work/run.ini" >"$work/run.log" 2>&1; then pass "gorp run finishes"; else
  fail "gorp run failed:"; cat "$work/run.log"; fi
grep -q "step     3/3" "$work/run.log" && pass "progress line for the last step" || fail "no progress line"
grep -q "loss curve:" "$work/run.log" && pass "loss curve printed" || fail "no loss curve"
grep -Eq "eval SST-2 +exact match +[0-9.]+% \([0-9]+/3\)" "$work/run.log" && pass "accuracy printed" \
  || fail "no accuracy line"
pred="$work/out/predictions/after_01/SST-2.jsonl"
[ "$(wc -l <"$pred" 2>/dev/null)" = 3 ] && pass "3 predictions written" || fail "prediction file"
[ -s "$work/out/model.h5" ] && pass "model file written" || fail "no model.h5"
[ -s "$work/out/results.h5" ] && pass "results.h5 written" || fail "no results.h5"
# gorp inspect reads results.h5: the run, both matrices and the metrics; --verify the checksums
if "$GORP" inspect "$work/out/results.h5" --verify >"$work/insp.txt" 2>&1 &&
  grep -q "gorp results file" "$work/insp.txt" && grep -q "^accuracy matrix" "$work/insp.txt" &&
  grep -q "^in-list matrix" "$work/insp.txt" && grep -Eq "^AP [0-9.]+  BWT" "$work/insp.txt" &&
  grep -Eq "verified [1-9][0-9]*, damaged 0" "$work/insp.txt"; then
  pass "gorp inspect results.h5 --verify"
else
  fail "gorp inspect results.h5:"; cat "$work/insp.txt"
fi
# every file gorp writes names the gorp that wrote it
want=$("$GORP" --version)
for f in "$work/out/model.h5" "$work/out/results.h5" "$(ls "$work"/out/checkpoints/ckpt_*.h5 | tail -1)"; do
  got=$(h5dump -a gorp_version "$f" 2>/dev/null | sed -n 's/.*(0): "\(.*\)"$/\1/p')
  [ "$got" = "$want" ] && pass "$(basename "$f") records '$want'" \
    || fail "$(basename "$f"): gorp_version '$got', want '$want'"
done
[ "$(wc -l <"$work/out/predictions/after_00/SST-2.jsonl" 2>/dev/null)" = 3 ] \
  && pass "zero-shot predictions written" || fail "no zero-shot predictions"

# a Hugging Face tokenizer.json (GPT-2's byte-level BPE) in place of the byte tokenizer
if "$GORP" run "$work/run.ini" --set data.tokenizer="$GORP_DATA/tokenizers/gpt2/tokenizer.json" \
  --set run.out_dir=gpt2 >"$work/gpt2.log" 2>&1 && grep -q "vocab 50257" "$work/gpt2.log"; then
  pass "gorp run with GPT-2's tokenizer.json (vocabulary 50257)"
else
  fail "gorp run with GPT-2's tokenizer.json:"; tail -5 "$work/gpt2.log"
fi

# the run's model file serves `gorp logits`
printf '256 10 20 30\n256 40 50 60\n' >"$work/ids.txt"
if "$GORP" logits --model "$work/out/model.h5" --tokens "$work/ids.txt" --out "$work/l.h5" \
  >"$work/out.txt" 2>&1 && grep -q "mean next-token loss" "$work/out.txt"; then
  pass "gorp logits on the trained model"
else
  fail "gorp logits:"; cat "$work/out.txt"
fi

# bad input
printf '256 10 259 30\n' >"$work/bad_ids.txt"
expect_error "token id >= vocab" "token id 259 .*vocabulary" \
  "$GORP" logits --model "$work/out/model.h5" --tokens "$work/bad_ids.txt"
printf '256 10 20\n256 10\n' >"$work/ragged.txt"
expect_error "ragged token file" "ragged.txt:2" \
  "$GORP" logits --model "$work/out/model.h5" --tokens "$work/ragged.txt"
expect_error "missing model file" "nope.h5" \
  "$GORP" logits --model "$work/nope.h5" --tokens "$work/ids.txt"
grep -v '^root' "$work/run.ini" >"$work/noroot.ini"
expect_error "config key missing" "data.root" "$GORP" run "$work/noroot.ini"
expect_error "unknown config key" "lrr" "$GORP" run "$work/run.ini" --set train.lrr=1
expect_error "unknown task" "no-such-task" "$GORP" run "$work/run.ini" --set data.tasks=no-such-task
# damaged data stops the run before any training step, naming the file
bad="$work/bad/SC"
mkdir -p "$bad" && cp -r "$root/SC/SST-2" "$bad/"
printf '[{"label": "positive", "sentence": "fine"},\n{"label": ' >"$bad/SST-2/train.json"
expect_error "malformed train.json named, with its offset" "SST-2/train.json.*byte offset" \
  "$GORP" run "$work/run.ini" --set data.root="$work/bad"
grep -q " step " "$work/stdout.txt" && fail "a training step ran on malformed data" \
  || pass "no training step on malformed data"
cp "$root/SC/SST-2/train.json" "$bad/SST-2/train.json"
printf '[{"label": "positive", "sentence": "caf\xe9"}]' >"$bad/SST-2/test.json"
expect_error "non-UTF-8 test.json named" "SST-2/test.json.*UTF-8" \
  "$GORP" run "$work/run.ini" --set data.root="$work/bad"
printf '[{"label": "great", "sentence": "fine"}]' >"$bad/SST-2/test.json"
expect_error "label not in labels.json" "test.json.*great" \
  "$GORP" run "$work/run.ini" --set data.root="$work/bad"

if command -v mpirun >/dev/null; then
  expect_error "two MPI ranks refused with a message, no hang" "job has 2 ranks" \
    timeout 120 mpirun --allow-run-as-root --oversubscribe -np 2 "$GORP" run "$work/run.ini" --set run.out_dir=np2
fi
expect_error "cuda backend refused without a GPU" "backend 'cuda'" \
  "$GORP" run "$work/run.ini" --set run.backend=cuda
expect_error "unknown command" "unknown command" "$GORP" frobnicate
finish
