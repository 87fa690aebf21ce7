#!/usr/bin/env bash
# The real pretrained model end to end (issue 16): scripts/get_model.sh smollm2-135m fetches and
# imports SmolLM2-135M-Instruct (tests/ref/test_smollm2_gguf.py checks its weights and logits
# against the reference), then gorp run fine-tunes it with the shipped experiment config
# (inputs/smollm2/seqlora.ini) cut to two tasks of two steps each and four test items, with the
# model's chat template, and evaluates after each task. Checked: the run ends with its accuracy
# matrix; each task's steps have finite losses; every prediction file has one line per test item;
# no answer runs on past the model's end-of-turn id (<|im_end|>, from the GGUF's
# tokenizer.ggml.eos_token_id) into an invented next turn.
. "$(dirname "$0")/lib.bash"
: "${GORP_SRC:?GORP_SRC must name the source tree}"
if GORP="$GORP" bash "$GORP_SRC/scripts/get_model.sh" smollm2-135m >"$work/get.log" 2>&1; then
  pass "scripts/get_model.sh smollm2-135m"
else
  fail "scripts/get_model.sh smollm2-135m:"; tail -5 "$work/get.log"
fi
models=$(dirname "$(tail -1 "$work/get.log")")
run="$work/run"
if OMP_NUM_THREADS=2 "$GORP" run "$GORP_SRC/inputs/smollm2/seqlora.ini" \
  --set model.init="$models/smollm2-135m.h5" --set data.tokenizer="$models/smollm2-135m.tokenizer.json" \
  --set data.chat_template="$models/smollm2-135m.chat.json" --set data.root="$GORP_DATA/CL_Benchmark/mini" \
  --set data.instructions="$GORP_DATA/CL_Benchmark/instruction_config.json" \
  --set data.order= --set data.substitute= --set data.tasks=agnews,amazon --set data.max_train_per_task=4 \
  --set train.batch_size=2 --set data.max_test_per_task=4 --set data.max_source_length=48 \
  --set run.log_every=1 --set run.out_dir="$run" >"$work/run.log" 2>&1; then
  pass "gorp run of inputs/smollm2/seqlora.ini on SmolLM2-135M (2 tasks x 2 steps)"
else
  fail "gorp run:"; tail -8 "$work/run.log"
fi
grep -q "^AP " "$work/run.log" && pass "the run printed its accuracy matrix and AP" \
  || fail "no AP line in the run's output"
steps=$(grep -cE "step +[0-9]+/2 +loss +[0-9]+\.[0-9]+ " "$work/run.log")
[ "$steps" = 4 ] && pass "4 training steps with finite losses" \
  || { fail "expected 4 step lines with finite losses, got $steps:"; grep "step" "$work/run.log" | head; }
for f in "$run"/predictions/after_0{0,1,2}/{agnews,amazon}.jsonl; do
  n=$(wc -l <"$f" 2>/dev/null || echo 0)
  [ "$n" = 4 ] || fail "$f: $n lines, expected 4"
done
[ "$(ls "$run"/predictions/after_0{0,1,2}/*.jsonl 2>/dev/null | wc -l)" = 6 ] \
  && pass "6 prediction files (3 rows x 2 tasks)" || fail "prediction files missing under $run/predictions"
if grep -lE '\\n(system|user|assistant)\\n' "$run"/predictions/*/*.jsonl >"$work/runon" 2>/dev/null; then
  fail "answers ran on past <|im_end|> into a new turn:"; head -3 "$(head -1 "$work/runon")"
else
  pass "no answer runs on past the model's end-of-turn id"
fi
echo "$n_pass passed, $n_fail failed"
[ "$n_fail" = 0 ]
