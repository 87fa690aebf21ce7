#!/usr/bin/env bash
# gorp export-hf / export-peft on bad input: a missing file, a file that is no model file, a
# tokenizer that is missing, an OUT_DIR that holds files (without --force), a bad shard size, a
# model file where export-peft needs a run directory, a run without adapters or without model.init,
# a --task that no pair trained on: each fails with a
# non-zero exit and a message naming the file or option, and writes nothing (no OUT_DIR, no
# staging folder). An empty OUT_DIR is used; --force replaces the exported files of an OUT_DIR,
# removing a stale model.safetensors when the new export is sharded, and keeps foreign files.
# A run's tokenizer.json is shipped with the export of its directory.
# (Round trips against transformers and peft: tests/ref/test_export.py.)
source "$(dirname "$0")/lib.bash"

small_run_config "$work/run.ini"
if "$GORP" run "$work/run.ini" --set run.method=seqft --set data.tasks=CB >"$work/run.log" 2>&1; then
  pass "a small seqft run for a model file and a run directory"
else
  fail "the small run failed:"
  tail -5 "$work/run.log"
fi
model=$work/run/model.h5

# nothing_written OUT: neither OUT nor a staging folder OUT.tmp.* exists
nothing_written() {
  if [ -e "$1" ] || compgen -G "$1.tmp.*" >/dev/null; then
    fail "$2: left $(ls -d "$1"* | tr '\n' ' ')"
  else
    pass "$2: nothing written"
  fi
}

expect_error "export-hf: missing model file" "model file '$work/none.h5'" \
  "$GORP" export-hf "$work/none.h5" "$work/o1"
nothing_written "$work/o1" "missing model file"
echo "not hdf5" >"$work/text.h5"
expect_error "export-hf: not a model file" "text.h5" "$GORP" export-hf "$work/text.h5" "$work/o2"
nothing_written "$work/o2" "not a model file"
expect_error "export-hf: missing --tokenizer" "tokenizer '$work/no.json'" \
  "$GORP" export-hf "$model" "$work/o3" --tokenizer "$work/no.json"
nothing_written "$work/o3" "missing tokenizer"
expect_error "export-hf: --max-shard-gb 0" "max-shard-gb must be a positive" \
  "$GORP" export-hf "$model" "$work/o4" --max-shard-gb 0
nothing_written "$work/o4" "bad shard size"
expect_error "export-peft: a model file" "export-peft takes a run directory" \
  "$GORP" export-peft "$model" "$work/o5"
nothing_written "$work/o5" "export-peft of a model file"
expect_error "export-peft: a run without adapters" "model.h5 has no /adapters" \
  "$GORP" export-peft "$work/run" "$work/o6"
nothing_written "$work/o6" "export-peft of a seqft run"
# LoRA runs: one from the random initialisation, one on the seqft model
lora=(--set run.method=inclora --set lora.targets=q,v --set lora.r=2)
if "$GORP" run "$work/run.ini" "${lora[@]}" --set run.out_dir="$work/lora_random" >"$work/run.log" 2>&1 &&
  "$GORP" run "$work/run.ini" "${lora[@]}" --set run.out_dir="$work/lora" \
    --set model.init="$model" >>"$work/run.log" 2>&1; then
  pass "two small inclora runs"
else
  fail "the inclora runs failed:"
  tail -5 "$work/run.log"
fi
expect_error "export-peft: a run without model.init" "random initialisation \(no model.init file\)" \
  "$GORP" export-peft "$work/lora_random" "$work/o7"
nothing_written "$work/o7" "export-peft without model.init"
expect_error "export-peft: --task that no pair trained on" "no adapter pair trained on task 'MNLI'" \
  "$GORP" export-peft "$work/lora" "$work/o8" --task MNLI
nothing_written "$work/o8" "export-peft --task MNLI"
# gorp with full-rank targets besides its adapters: the pairs alone do not make its model
if "$GORP" run "$work/run.ini" --set lora.targets=q,v --set lora.r=2 --set run.out_dir="$work/gorp" \
  --set model.init="$model" >"$work/run.log" 2>&1; then
  expect_error "export-peft: a run that trained full-rank weights too" \
    "tensor model.layers.0.*is not model.init's.*trained more than its LoRA pairs" \
    "$GORP" export-peft "$work/gorp" "$work/o10"
  nothing_written "$work/o10" "export-peft of a gorp run with full-rank targets"
else
  fail "the gorp run failed:"
  tail -5 "$work/run.log"
fi
if "$GORP" export-peft "$work/lora" "$work/o9" >/dev/null && [ -f "$work/o9/SST-2/adapter_config.json" ] &&
  [ -f "$work/o9/CB/adapter_model.safetensors" ] && [ -f "$work/o9/base/model.safetensors" ]; then
  pass "export-peft: base/, SST-2/ and CB/"
else
  fail "export-peft of the inclora run: $(ls -R "$work/o9" 2>&1 | tr '\n' ' ')"
fi

# a run with a tokenizer.json: export-hf of its directory ships that file, byte for byte
tok=$GORP_DATA/tokenizers/gpt2/tokenizer.json
if "$GORP" run "$work/run.ini" --set run.method=seqft --set data.tasks=CB --set data.tokenizer="$tok" \
  --set run.out_dir="$work/run_tok" >"$work/run.log" 2>&1 &&
  "$GORP" export-hf "$work/run_tok" "$work/o11" >/dev/null && cmp -s "$tok" "$work/o11/tokenizer.json" &&
  grep -q PreTrainedTokenizerFast "$work/o11/tokenizer_config.json"; then
  pass "export-hf of a run with data.tokenizer: tokenizer.json copied, tokenizer_config.json written"
else
  fail "export-hf of a run with a tokenizer: $(ls "$work/o11" 2>&1 | tr '\n' ' ')"
  tail -3 "$work/run.log"
fi

mkdir "$work/full" && echo keep >"$work/full/notes.txt"
expect_error "export-hf: OUT_DIR holds files" "$work/full exists and holds 1 entry.*--force" \
  "$GORP" export-hf "$model" "$work/full"
if [ "$(ls "$work/full")" = notes.txt ] && ! compgen -G "$work/full.tmp.*" >/dev/null; then
  pass "OUT_DIR with files: left as it was, no staging folder"
else
  fail "OUT_DIR with files changed: $(ls "$work/full")"
fi

mkdir "$work/empty"
if "$GORP" export-hf "$model" "$work/empty" >/dev/null && [ -f "$work/empty/model.safetensors" ] &&
  [ -f "$work/empty/config.json" ]; then
  pass "an empty OUT_DIR is used"
else
  fail "export-hf into an empty OUT_DIR"
fi
# --force with a sharded export over the single file: the stale model.safetensors goes
if "$GORP" export-hf "$work/run" "$work/empty" --force --max-shard-gb 1e-5 >/dev/null &&
  [ ! -e "$work/empty/model.safetensors" ] && [ -f "$work/empty/model.safetensors.index.json" ] &&
  compgen -G "$work/empty/model-00002-of-*.safetensors" >/dev/null; then
  pass "--force: shards and index replace model.safetensors"
else
  fail "--force sharded over single: $(ls "$work/empty" | tr '\n' ' ')"
fi
cp "$work/full/notes.txt" "$work/empty/"
if "$GORP" export-hf "$model" "$work/empty" --force >/dev/null && [ -f "$work/empty/notes.txt" ] &&
  [ -f "$work/empty/model.safetensors" ] && ! compgen -G "$work/empty/model-*" >/dev/null &&
  [ ! -e "$work/empty/model.safetensors.index.json" ]; then
  pass "--force: model.safetensors replaces the shards, a foreign file stays"
else
  fail "--force single over sharded: $(ls "$work/empty" | tr '\n' ' ')"
fi
finish
