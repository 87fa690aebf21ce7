#!/usr/bin/env bash
# The synthetic suite end to end: gorp pretrain trains a base on the suite's mix and writes it with
# its key; a second call with the same config reuses it; gorp run fine-tunes it on a synthetic
# order (the suite's own tokenizer) and evaluates; a tokenizer key is refused with the suite.
. "$(dirname "$0")/lib.bash"
cat >"$work/p.ini" <<INI
[run]
seed = 2
log_every = 10
[model]
hidden_size = 32
intermediate_size = 48
num_layers = 1
num_heads = 2
max_seq = 256
[data]
format = synthetic
order = order1
synthetic_train = 16
synthetic_test = 4
[pretrain]
out = base/base.h5
steps = 20
batch_size = 4
warmup = 5
[train]
batch_size = 4
max_steps = 3
[eval]
max_new_tokens = 4
INI
if "$GORP" pretrain "$work/p.ini" >"$work/pre.log" 2>&1 && [ -s "$work/base/base.h5" ] \
  && [ -s "$work/base/base.h5.key" ] && grep -q "held-out option lists" "$work/pre.log"; then
  pass "gorp pretrain writes the base, its key and the held-out option check"
else
  fail "gorp pretrain:"; tail -5 "$work/pre.log"
fi
"$GORP" pretrain "$work/p.ini" >"$work/pre2.log" 2>&1 && grep -q "up to date" "$work/pre2.log" \
  && pass "a second pretrain with the same config reuses the base" || fail "no reuse"
"$GORP" pretrain "$work/p.ini" --set pretrain.steps=21 >"$work/pre3.log" 2>&1 \
  && ! grep -q "up to date" "$work/pre3.log" && pass "a changed pretraining config retrains" \
  || fail "changed config reused the old base"
if "$GORP" run "$work/p.ini" --set model.init=base/base.h5 --set run.out_dir=run \
  --set run.method=inclora >"$work/run.log" 2>&1 && grep -q "syn-dbpedia" "$work/run.log" \
  && [ -s "$work/run/results.h5" ] && grep -q "^AP " "$work/run.log"; then
  pass "gorp run fine-tunes the base on synthetic order 1 (4 tasks) and reports AP/BWT"
else
  fail "gorp run on the suite:"; tail -5 "$work/run.log"
fi
expect_error "the suite brings its own tokenizer" "brings its own tokenizer" \
  "$GORP" run "$work/p.ini" --set data.tokenizer=x.json
expect_error "unknown synthetic order" "not one of the synthetic suite's orders" \
  "$GORP" run "$work/p.ini" --set data.order=order9
finish
