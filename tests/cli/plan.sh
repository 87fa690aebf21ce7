#!/usr/bin/env bash
# gorp plan: the LLaMA-2-7B order-1 config (its model file is absent here, so the shape comes from
# --set model.* keys) prints the per-rank table for tp 1/2/4/8 with weights that shrink as the
# Megatron split says, --dp splits the batch, --json is one JSON object whose parts add up, a model
# file's architecture is read from the file, and LLaMA-2-7B's config.json (--hf-config) gives the
# same plan as the model.* keys; bad input (tp not dividing the heads, a missing model
# file, --seq past max_seq, bad flags) fails non-zero naming the key.
. "$(dirname "$0")/lib.bash"
src=${GORP_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
cfg="$src/inputs/llama2-7b/order1.ini"
l7=(--set model.init=random --set model.vocab_size=32000 --set model.hidden_size=4096
  --set model.intermediate_size=11008 --set model.num_layers=32 --set model.num_heads=32
  --set model.max_seq=4096 --set model.rms_eps=1e-5)

# the model file the shipped config names does not exist here: refused, naming key and path
expect_error "missing model file names model.init and its path" \
  "model.init = .*models/llama-2-7b.h5: No such file" "$GORP" plan "$cfg"

# field N of the line starting with WORD in a plan printout
field() { awk -v w="$1" -v n="$2" '$1 == w { print $n; exit }' "$3"; }

for tp in 1 2 4 8; do
  if "$GORP" plan "$cfg" "${l7[@]}" --tp "$tp" >"$work/tp$tp.txt" 2>"$work/err"; then
    pass "tp $tp: plan printed"
  else
    fail "tp $tp: exit non-zero"; cat "$work/err"
  fi
done
t1=$work/tp1.txt
grep -q "6738415616 parameters" "$t1" && pass "LLaMA-2-7B has 6738415616 parameters" \
  || fail "parameter count"
grep -q "8 sequence(s) per DP rank (batch 8 over dp 1) x 562 tokens" "$t1" \
  && pass "batch 8 x (512 + 50) tokens" || fail "batch/sequence line"
for part in weights gradients lora optimizer bases activations workspace; do
  grep -Eq "^$part +[0-9]+ +[0-9.]+$" "$t1" && pass "part $part listed" || fail "part $part missing"
done
# weights: embedding + head + norms replicated (1049640960 B), the rest split over tp
w1=$(field weights 2 "$t1")
[ "$w1" = 26953662464 ] && pass "tp 1 weights 26953662464 B (fp32)" || fail "tp 1 weights $w1"
for tp in 2 4 8; do
  w=$(field weights 2 "$work/tp$tp.txt")
  want=$(( 1049640960 + (26953662464 - 1049640960) / tp ))
  [ "$w" = "$want" ] && pass "tp $tp weights = replicated + split / $tp" \
    || fail "tp $tp weights $w, want $want"
done
grep -q "gate_proj full-rank: S (11008 x 32)" "$t1" \
  && pass "gate basis at its capacity: 4 tasks x full.rank 8 columns" || fail "gate basis line"
grep -q "gate_proj full-rank, one layer's (11008 x 4096), streamed" "$t1" \
  && pass "the gate's gradient: one layer's (full.stream_grad)" || fail "streamed gradient line"
"$GORP" plan "$cfg" "${l7[@]}" --set full.stream_grad=false >"$work/held.txt" 2>&1 &&
  grep -q "gate_proj full-rank, 32 layers x (11008 x 4096)" "$work/held.txt" \
  && pass "full.stream_grad = false: every layer's gate gradient" || fail "held gradient line"
"$GORP" plan "$cfg" "${l7[@]}" --set model.dtype=bf16 >"$work/bf16.txt" 2>&1
w16=$(field weights 2 "$work/bf16.txt")
# bf16: embedding + head + the frozen linears (all but gate) at 2 bytes, norms and gate at 4
want16=$(( 2 * 2 * 32000 * 4096 + 4 * 65 * 4096 + 4 * 32 * 11008 * 4096 + 2 * 32 * (4 * 4096 * 4096 + 2 * 11008 * 4096) ))
[ "$w16" = "$want16" ] && pass "model.dtype = bf16: weights $w16 B (frozen matrices at 2 bytes)" \
  || fail "bf16 weights $w16, want $want16"
grep -q "note: GORP bases are the worst case" "$t1" && pass "worst case stated" \
  || fail "worst-case note"
grep -q "note: tp > 1 is the Megatron layout gorp run uses" "$work/tp2.txt" \
  && pass "tp > 1 layout noted" || fail "tp note"

# dp 8: one sequence per rank, activations an eighth of dp 1's (no batch-independent part but RoPE)
"$GORP" plan "$cfg" "${l7[@]}" --dp 8 >"$work/dp8.txt" 2>&1
grep -q "1 sequence(s) per DP rank (batch 8 over dp 8)" "$work/dp8.txt" && pass "dp 8 splits the batch" \
  || fail "dp 8 batch line"
a1=$(field activations 2 "$t1")
a8=$(field activations 2 "$work/dp8.txt")
[ $(( a8 * 8 - a1 )) -lt 4000000 ] && [ $(( a1 - a8 * 8 )) -lt 4000000 ] \
  && pass "dp 8 activations = dp 1 / 8 (RoPE aside)" || fail "dp 8 activations $a8 vs $a1"

# JSON: one object; parts add up to the total; tp-split share x 2 = tp 1's
"$GORP" plan "$cfg" "${l7[@]}" --json >"$work/p1.json" 2>&1
"$GORP" plan "$cfg" "${l7[@]}" --json --tp 2 --dp 2 >"$work/p2.json" 2>&1
if python3 - "$work/p1.json" "$work/p2.json" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
parts = ["weights", "gradients", "lora", "optimizer", "bases", "activations", "workspace"]
for j in (a, b):
    assert sum(j["bytes_per_rank"][k] for k in parts) == j["bytes_per_rank"]["total"]
assert a["model"]["parameters"] == 6738415616
assert b["layout"] == dict(b["layout"], tp=2, dp=2, ranks=4, batch=8, batch_per_rank=4, seq=562)
for k in ["weights", "gradients", "lora", "optimizer", "bases"]:
    assert b["bytes_per_rank_split_over_tp"][k] * 2 == a["bytes_per_rank_split_over_tp"][k], k
assert b["bytes_all_ranks"] == 4 * b["bytes_per_rank"]["total"]
assert abs(a["flops_per_step_per_rank"]["step"] - 3 * a["flops_per_step_per_rank"]["forward"]) < 1
EOF
then pass "--json: parts add up, tp 2 halves the split share"; else fail "--json checks"; fi

# LLaMA-2-7B's config.json alone (--hf-config, the file or its folder; model.init is not read)
# plans what the model.* keys plan
"$GORP" plan "$cfg" --hf-config "$src/inputs/llama2-7b/config.json" --json >"$work/hf.json" 2>&1
"$GORP" plan "$cfg" --hf-config "$src/inputs/llama2-7b" --json >"$work/hfdir.json" 2>&1
if python3 - "$work/p1.json" "$work/hf.json" "$work/hfdir.json" <<'EOF'
import json, sys
a, b, c = (json.load(open(p)) for p in sys.argv[1:4])
for j in (b, c):
    for k in ["bytes_per_rank", "flops_per_step_per_rank", "layout"]:
        assert j[k] == a[k], k
    assert j["model"]["parameters"] == 6738415616
EOF
then pass "--hf-config config.json (file or folder) plans what the model.* keys plan"
else fail "--hf-config plan differs:"; head -3 "$work/hf.json"; fi
printf '{"hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 10,
  "intermediate_size": 80, "rope_scaling": {"rope_type": "linear", "factor": 2.0}}' >"$work/bad.json"
expect_error "--hf-config with a rope_scaling gorp does not implement" "bad.json.*rope" \
  "$GORP" plan "$cfg" --hf-config "$work/bad.json"
expect_error "--hf-config missing" "/nonexistent/config.json" \
  "$GORP" plan "$cfg" --hf-config /nonexistent/config.json

# a model file: its architecture wins over the model.* keys
cat >"$work/m.ini" <<INI
[run]
out_dir = out
[model]
hidden_size = 24
intermediate_size = 40
num_layers = 1
num_heads = 2
max_seq = 256
[data]
root = $GORP_DATA/CL_Benchmark/mini
instructions = $GORP_DATA/CL_Benchmark/instruction_config.json
tasks = SST-2
max_source_length = 24
max_train_per_task = 4
max_test_per_task = 1
[train]
batch_size = 4
max_steps = 1
[eval]
max_new_tokens = 2
INI
if "$GORP" run "$work/m.ini" >"$work/run.log" 2>&1 && [ -s "$work/out/model.h5" ]; then
  "$GORP" plan "$work/m.ini" --set model.init=out/model.h5 --set model.hidden_size=64 \
    >"$work/file.txt" 2>&1
  grep -q "1 layers, hidden 24, MLP 40, 2 heads (2 KV) x 12, vocab 259" "$work/file.txt" \
    && grep -q "shape: read from model.init = .*out/model.h5; vocab: the model file" "$work/file.txt" \
    && pass "architecture read from the model file" || { fail "model file plan:"; cat "$work/file.txt"; }
  # gorp config shows the file's architecture, as comments, instead of the ignored model.* keys
  (cd "$work" && "$GORP" config m.ini --set model.init=out/model.h5 --set model.hidden_size=64) \
    >"$work/cfg.txt" 2>&1
  grep -q "^# hidden_size = 24  (from model.init; this config's 64 is ignored)$" "$work/cfg.txt" \
    && grep -q "^# tie_embeddings = false  (from model.init" "$work/cfg.txt" \
    && grep -q "^# init_std = .*(ignored: model.init is a file)" "$work/cfg.txt" \
    && ! grep -Eq "^(hidden_size|num_layers|init_std) =" "$work/cfg.txt" \
    && (cd "$work" && "$GORP" config cfg.txt >/dev/null 2>&1) \
    && pass "gorp config: the model file's architecture, the output still a config" \
    || { fail "gorp config with a model file:"; sed -n '/^\[model\]/,/^$/p' "$work/cfg.txt"; }
else
  fail "could not make a model file:"; tail -5 "$work/run.log"
fi
# --gflops: steps and test prompts counted from the data as gorp run counts them, seconds =
# FLOPs / throughput; two tasks with different caps, one of them evaluated in fewer rows
"$GORP" plan "$work/m.ini" --set data.tasks=SST-2,CB --set data.max_train_per_task=9 \
  --set data.max_test_per_task=3 --set train.max_steps=0 --gflops 2.5 --json >"$work/time.json" 2>&1
if python3 - "$work/time.json" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
t = j["time"]
assert t["gflops"] == 2.5 and not t["measured"]
assert abs(t["step_s"] - j["flops_per_step_per_rank"]["step"] / 2.5e9) < 1e-9 * t["step_s"]
sst, cb = t["tasks"]
# 9 examples at batch 4: 3 steps; SST-2 in rows 0, 1, 2, CB in rows 0, 1, 2 (row 1 = FWT)
assert (sst["task"], sst["examples"], sst["steps"], sst["test"], sst["rows"]) == ("SST-2", 9, 3, 3, 3), sst
assert (cb["task"], cb["examples"], cb["steps"], cb["test"], cb["rows"]) == ("CB", 9, 3, 3, 3), cb
assert abs(t["train_s"] - 6 * t["step_s"]) < 1e-9 * t["train_s"]
assert t["prompts_per_rank"] == 18
assert abs(t["eval_s"] - 18 * t["prompt_s"]) < 1e-9 * t["eval_s"]
EOF
then pass "--gflops: steps, test prompts, rows and seconds as gorp run counts them"
else fail "--gflops estimate:"; head -c 600 "$work/time.json"; fi
"$GORP" plan "$work/m.ini" --measure >"$work/measure.txt" 2>&1
grep -Eq "^time at [0-9.]+ GFLOP/s per rank \(--measure" "$work/measure.txt" \
  && grep -q "whole run: training" "$work/measure.txt" && pass "--measure times this machine's GEMM" \
  || { fail "--measure:"; tail -5 "$work/measure.txt"; }
expect_error "--gflops negative" "--gflops takes a positive number" \
  "$GORP" plan "$work/m.ini" --gflops -2
expect_error "--gflops reads the tasks' data" "dataset 'nope' not found" \
  "$GORP" plan "$work/m.ini" --set data.tasks=nope --gflops 5

# random init without model.vocab_size: the byte tokenizer's 259; a missing tokenizer.json: assumed
"$GORP" plan "$work/m.ini" >"$work/byte.txt" 2>&1
grep -q "vocab 259.*vocab: the byte-level tokenizer" <(tr -d '\n' <"$work/byte.txt") \
  && pass "byte tokenizer vocab" || fail "byte vocab"
"$GORP" plan "$work/m.ini" --set data.tokenizer=/nonexistent/tokenizer.json >"$work/tok.txt" 2>&1
grep -q "note: vocab_size 32000 is assumed: model.vocab_size is 0 and data.tokenizer = /nonexistent" \
  "$work/tok.txt" && pass "assumed vocab stated" || fail "assumed vocab note"

expect_error "tp 3 does not divide 32 heads" "parallel.tp = 3 does not divide model.num_heads = 32" \
  "$GORP" plan "$cfg" "${l7[@]}" --tp 3
expect_error "tp 2 does not divide 3 KV heads" "does not divide model.num_kv_heads = 3" \
  "$GORP" plan "$work/m.ini" --set model.num_heads=6 --set model.num_kv_heads=3 --set model.head_dim=4 --tp 2
expect_error "tp 16 does not divide the MLP" "does not divide model.intermediate_size = 40" \
  "$GORP" plan "$work/m.ini" --set model.num_heads=16 --set model.head_dim=2 --tp 16
expect_error "parallel.tp in the config is checked too" "parallel.tp = 5 does not divide" \
  "$GORP" plan "$cfg" "${l7[@]}" --set parallel.tp=5
expect_error "--seq past max_seq" "--seq 5000 exceeds the model's max_position_embeddings = 4096" \
  "$GORP" plan "$cfg" "${l7[@]}" --seq 5000
expect_error "--tp 0" "--tp expects a positive integer, got '0'" "$GORP" plan "$cfg" --tp 0
expect_error "unknown flag" "unexpected argument '--tb'" "$GORP" plan "$cfg" --tb 2
expect_error "no config" "usage: gorp plan CONFIG.ini" "$GORP" plan
finish
