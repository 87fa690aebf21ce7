#!/usr/bin/env bash
# Every built method runs a two-task sequence of real mini data (SST-2 -> CB) with a tiny model to
# the end and reports accuracy; gorp runs with the paper's and the input-axis configuration; bad
# method keys are refused before training, naming the key.
. "$(dirname "$0")/lib.bash"

cat >"$work/m.ini" <<INI
[run]
out_dir = out
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
max_train_per_task = 8
max_test_per_task = 2
[train]
batch_size = 4
max_steps = 2
[eval]
max_new_tokens = 3
[full]
rank = 4
update_gap = 1
INI

run_method() {
  local name=$1
  shift
  if "$GORP" run "$work/m.ini" --set run.out_dir="$name" "$@" >"$work/$name.log" 2>&1 \
    && grep -q "^AP " "$work/$name.log" && [ -s "$work/$name/results.h5" ]; then
    pass "$name: two tasks, accuracy matrix and AP/BWT reported"
  else
    fail "$name:"; tail -5 "$work/$name.log"
  fi
}
for m in seqft seqlora inclora olora nlora galore gorp mtl; do run_method "$m" --set run.method="$m"; done
run_method gorp_input --set run.method=gorp --set gorp.axis=input --set gorp.project_update=true
run_method gorp_activation --set run.method=gorp --set gorp.axis=input \
  --set gorp.basis_source=activation --set full.optimizer=adam --set full.targets=all
grep -q "shared space after task 2" "$work/gorp.log" && pass "gorp reports its basis sizes" \
  || fail "gorp basis sizes not reported"

expect_error "unknown method" "run.method" "$GORP" run "$work/m.ini" --set run.method=ewc
expect_error "unknown LoRA target" "lora.targets: unknown target 'qq'" \
  "$GORP" run "$work/m.ini" --set run.method=inclora --set lora.targets=q,qq
expect_error "rank larger than the matrix" "full.rank = 99 is larger than model.layers.0" \
  "$GORP" run "$work/m.ini" --set run.method=gorp --set full.rank=99
expect_error "energy outside (0, 1]" "gorp.energy" "$GORP" run "$work/m.ini" --set gorp.energy=1.5
expect_error "energy 0 refused" "gorp.energy" "$GORP" run "$work/m.ini" --set gorp.energy=0
expect_error "activation bases need the input axis" "gorp.basis_source = activation needs" \
  "$GORP" run "$work/m.ini" --set run.method=gorp --set gorp.basis_source=activation
finish
