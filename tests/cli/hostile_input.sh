#!/usr/bin/env bash
# Hostile input files and values (docs/CONFIG.md "Limits", docs/DATA.md): each is refused with a
# non-zero exit and a message naming the file or key, and none may hang or crash. Every command
# runs under `timeout 20`, so a reader that loops on /dev/zero or waits on a FIFO fails the check
# (exit 124) instead of blocking the suite; a crash shows as exit 139. Covered: devices, FIFOs and
# directories where a regular file belongs (config, include, orders, tokenizer); NUL bytes in
# configs and orders; files over their size cap; paths past CONFIG_PATH_MAX; model sizes whose
# products overflow; an epoch count whose step count wrapped to 0; max_seq too small for the
# answer (in the config or in a model.init file); tokenizer.json added tokens without id; a Split
# regex with nested repetition; dataset JSON with \u0000, duplicate keys, and 300,000 labels.
. "$(dirname "$0")/lib.bash"
mini="$GORP_DATA/CL_Benchmark/mini"
instr="$GORP_DATA/CL_Benchmark/instruction_config.json"

# refuse NAME PATTERN CMD...: CMD exits 2 (bad input) within 20 s and prints PATTERN (grep -E).
refuse() {
  local name=$1 pattern=$2 rc=0
  shift 2
  timeout 20 "$@" >"$work/out" 2>"$work/err" || rc=$?
  if [ "$rc" -eq 2 ] && grep -Eq -- "$pattern" "$work/err"; then
    pass "$name"
  else
    fail "$name: exit $rc (124: hung, 139: crashed), wanted 2 and /$pattern/:"
    head -5 "$work/err" | sed 's/^/    /'
  fi
}

cat >"$work/base.ini" <<INI
[run]
out_dir = out
[model]
hidden_size = 16
intermediate_size = 24
num_layers = 1
num_heads = 2
max_seq = 256
[data]
root = $mini
instructions = $instr
tasks = SST-2
max_source_length = 24
max_train_per_task = 4
max_test_per_task = 2
[train]
batch_size = 2
max_steps = 1
[eval]
max_new_tokens = 2
INI

# --- not regular files: devices, FIFOs, directories ---
refuse "config is /dev/zero" "config file '/dev/zero': not a regular file" "$GORP" config /dev/zero
mkfifo "$work/fifo.ini"
refuse "config is a FIFO" "fifo.ini': not a regular file \(a FIFO\)" "$GORP" config "$work/fifo.ini"
refuse "config is a directory" "not a regular file \(a directory\)" "$GORP" config "$work"
printf 'include = /dev/zero\n[run]\nseed = 2\n' >"$work/inc.ini"
refuse "include = /dev/zero" "config file '/dev/zero': not a regular file" "$GORP" config "$work/inc.ini"
refuse "data.orders = /dev/zero" "data.orders '/dev/zero': not a regular file" \
  "$GORP" config "$work/base.ini" --set data.tasks= --set data.order=order1 --set data.orders=/dev/zero
mkfifo "$work/fifo.h5"
refuse "gorp plan: model.init is a FIFO" "model.init '.*fifo.h5': not a regular file \(a FIFO\)" \
  "$GORP" plan "$work/base.ini" --set model.init="$work/fifo.h5"
refuse "data.tokenizer = /dev/zero" "tokenizer '/dev/zero': not a regular file" \
  "$GORP" plan "$work/base.ini" --set data.tokenizer=/dev/zero

# --- NUL bytes and size caps ---
printf '[run]\nseed = 1\0junk\n' >"$work/nul.ini"
refuse "NUL byte in a config" "nul.ini:2: NUL byte at column 9" "$GORP" config "$work/nul.ini"
printf 'order1 SST-2\0 CB\n' >"$work/nul_orders.txt"
refuse "NUL byte in an orders file" "nul_orders.txt:1: NUL byte" \
  "$GORP" config "$work/base.ini" --set data.tasks= --set data.order=order1 \
  --set data.orders="$work/nul_orders.txt"
{ echo "[run]"; head -c 1100000 /dev/zero | tr '\0' '#' | fold -w 100; } >"$work/big.ini"
refuse "config over 1 MiB" "big.ini': [0-9]+ bytes is over the limit of 1048576 bytes" \
  "$GORP" config "$work/big.ini"
long=/$(printf 'a%.0s' $(seq 3100))
refuse "path past CONFIG_PATH_MAX" "data.root is a path of 3101 bytes .* the limit is 3072" \
  "$GORP" config "$work/base.ini" --set data.root="$long"

# --- sizes whose products overflowed ---
refuse "model.num_layers = 477218589" "model.num_layers = 477218589: expected an integer in \[1, 65536\]" \
  "$GORP" plan "$work/base.ini" --set model.num_layers=477218589
refuse "num_heads x head_dim past an int" "model.num_heads x model.head_dim = 65536 x 65536" \
  "$GORP" plan "$work/base.ini" --set model.num_heads=65536 --set model.head_dim=65536
refuse "parameters past 2^40" "model.num_layers = 65536 .* over gorp's limit of 1099511627776" \
  "$GORP" plan "$work/base.ini" --set model.num_layers=65536 --set model.hidden_size=100000
# 1000 layers x 2e9 sequences x 64 heads x 1024^2 attention floats wrapped gorp plan's u64 sums
refuse "plan sizes past 2^62 floats" "a batch of 2000000000 sequences of 1024 tokens .* more than 2\^62" \
  "$GORP" plan "$work/base.ini" --set model.num_layers=1000 --set model.num_heads=64 \
  --set model.hidden_size=1024 --set model.max_seq=1024 --set train.batch_size=2000000000 \
  --set data.max_source_length=1000
refuse "model.max_seq = 1" "model.max_seq = 1: expected an integer in \[2," \
  "$GORP" config "$work/base.ini" --set model.max_seq=1
refuse "model.max_seq below the answer" "model.max_seq = 2 must be larger than eval.max_new_tokens = 2" \
  "$GORP" config "$work/base.ini" --set model.max_seq=2
refuse "train.epochs = 1073741824" \
  "task SST-2: train.epochs = 1073741824 x 2 steps per epoch .* over gorp's limit of 100000000" \
  "$GORP" run "$work/base.ini" --set train.epochs=1073741824 --set train.max_steps=0 \
  --set run.out_dir="$work/epochs"

# --- tokenizer.json ---
specials='{"id":0,"content":"<unk>","special":true},{"id":1,"content":"<s>","special":true},{"id":2,"content":"</s>","special":true}'
wl_model='"model":{"type":"WordLevel","unk_token":"<unk>","vocab":{"<unk>":0,"<s>":1,"</s>":2}}'
echo "{\"added_tokens\":[$specials,{\"content\":\"x\"}],$wl_model}" >"$work/noid.json"
refuse "added token without id" "noid.json': every added_tokens entry needs an id" \
  "$GORP" plan "$work/base.ini" --set data.tokenizer="$work/noid.json"
echo "{\"added_tokens\":[$specials,{\"id\":3,\"content\":\"x\",\"lstrip\":true}],$wl_model}" \
  >"$work/lstrip.json"
refuse "added token with lstrip" "added token 'x' sets single_word, lstrip or rstrip" \
  "$GORP" plan "$work/base.ini" --set data.tokenizer="$work/lstrip.json"
# twenty nested \w* before an x that SST-2's words lack: backtracking tries every way of sharing
# a word's letters among the atoms (minutes per word); the run must finish, with <unk> words
nested=$(printf '\\\\w*%.0s' $(seq 20))
echo "{\"added_tokens\":[$specials],\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"${nested}x|\\\\w+\"},\"behavior\":\"Isolated\",\"invert\":false},$wl_model}" \
  >"$work/nested.json"
if timeout 20 "$GORP" run "$work/base.ini" --set data.tokenizer="$work/nested.json" \
  --set run.out_dir="$work/nested" >"$work/nested.log" 2>&1; then
  pass "Split regex with nested repetition: gorp run ends"
else
  fail "Split regex with nested repetition: exit $? (124: hung)"; tail -3 "$work/nested.log"
fi

# --- dataset JSON ---
root="$work/root"
mkdir -p "$root/SC/toy"
echo '["good", "bad"]' >"$root/SC/toy/labels.json"
echo '[{"label": "good", "sentence": "fine"}]' >"$root/SC/toy/test.json"
toy=("$GORP" run "$work/base.ini" --set data.root="$root" --set data.tasks=toy
  --set run.out_dir="$work/toy")
echo '[{"label": "good", "sentence": "a"}, {"label": "bad", "sentence": "cut\u0000 here"}]' \
  >"$root/SC/toy/train.json"
refuse "\\u0000 in a sentence" "train.json': \\\\u0000 \(a NUL character\) .* in item 1 \(0-based\)" "${toy[@]}"
echo '[{"label": "good", "sentence": "a", "sentence": "b"}]' >"$root/SC/toy/train.json"
refuse "duplicate key in an item" "train.json': duplicate key \"sentence\" in the object at \\$\[0\]" "${toy[@]}"
echo '[{"label": "good", "sentence": "a"}]' >"$root/SC/toy/train.json"
seq -f '"L%.0f"' 300000 | paste -sd, | sed 's/^/["good", "bad", /; s/$/]/' >"$root/SC/toy/labels.json"
# (the run then stops on the prompt, whose Option: line no longer fits: loading is the check)
timeout 20 "${toy[@]}" >"$work/many.log" 2>&1
rc=$?
if [ "$rc" -ne 124 ] && [ "$rc" -ne 139 ] && grep -q "loaded SC/toy: 1 train" "$work/many.log"; then
  pass "300,000 labels load (duplicate check and label lookups are not quadratic)"
else
  fail "300,000 labels: exit $rc (124: hung)"; tail -3 "$work/many.log"
fi
echo '["good", "bad", "good"]' >"$root/SC/toy/labels.json"
refuse "duplicate label still named" "label 'good' appears twice \(labels 0 and 2, 0-based\)" "${toy[@]}"

# --- a model file whose positions cannot hold an answer (was: "the buffer holds -3") ---
(cd "$work" && timeout 60 "$GORP" run base.ini --set run.out_dir=small_model >/dev/null 2>&1) \
  || fail "a 1-step run to make a model file failed"
refuse "model.init with max_position_embeddings <= eval.max_new_tokens" \
  "model.init '.*model.h5' has max_position_embeddings = 256, not larger than eval.max_new_tokens = 300" \
  "$GORP" run "$work/base.ini" --set model.init="$work/small_model/model.h5" \
  --set run.out_dir="$work/out_small" --set eval.max_new_tokens=300

refuse "gorp logits --tokens /dev/zero" "token id file '/dev/zero': not a regular file" \
  "$GORP" logits --model "$work/small_model/model.h5" --tokens /dev/zero --out "$work/logits.h5"

finish
