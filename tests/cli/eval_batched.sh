#!/usr/bin/env bash
# Batched evaluation changes nothing but speed: a short `gorp run` on real mini data (two tasks,
# 24 test items each, a random model whose answers differ from prompt to prompt, an eval.stop id
# that ends them at different lengths) writes the same prediction files (byte for byte), accuracy
# matrix and results.h5 with eval.batch_size 5 and 16, and on two data-parallel ranks, as with
# batch size 1 (one prompt at a time, in item order), and with batch size 16 as with 1 on two
# tensor-parallel ranks; eval.stop texts that are not one token, and eval.batch_size 0, are refused
# at start-up naming the key.
. "$(dirname "$0")/lib.bash"

root="$GORP_DATA/CL_Benchmark/mini"
cat >"$work/run.ini" <<INI
[run]
out_dir = b1
[model]
hidden_size = 32
intermediate_size = 40
num_layers = 2
num_heads = 2
max_seq = 512
init_std = 0.5
[data]
root = $root
instructions = $GORP_DATA/CL_Benchmark/instruction_config.json
tasks = SST-2, agnews
max_source_length = 200
max_train_per_task = 8
max_test_per_task = 24
[train]
batch_size = 4
max_steps = 1
[eval]
max_new_tokens = 8
batch_size = 1
stop = e
INI

# the accuracy matrix block of a run's log, and the contents of its results.h5 (h5dump, less the
# first line, which names the file: HDF5 stores object times, so the bytes differ run to run; and
# less /run: config and times)
matrix() { sed -n '/^accuracy matrix/,/^AP /p' "$1.log"; }
# results.h5 without /run (paths, times) and /loss_curves: evaluation settings do not touch
# training, and the training loss of 2 data-parallel ranks equals one rank's only to rounding (the
# halves' sums added; tests/ref/test_dp_equivalence.py holds that to a tolerance)
results() {
  h5dump "$1/results.h5" 2>&1 | tail -n +2 |
    sed '/^   GROUP "run" {$/,/^   }$/d; /^   GROUP "loss_curves" {$/,/^   }$/d'
}

run_with() { # NAME [--set ...]: a run into $work/NAME
  local name=$1
  shift
  "$GORP" run "$work/run.ini" --set run.out_dir="$work/$name" "$@" >"$work/$name.log" 2>&1
}

if run_with b1; then pass "gorp run with eval.batch_size = 1"; else
  fail "gorp run with eval.batch_size = 1:"; tail -20 "$work/b1.log"; fi
grep -Eq "evaluation stops at ids 257 101 " "$work/b1.log" \
  && pass "start-up line names the stop set (EOS 257, 'e' = 101)" || fail "no stop-set line"
preds=$(cd "$work/b1" && find predictions -name '*.jsonl' | sort)
[ "$(echo "$preds" | wc -l)" = 6 ] && pass "6 prediction files (3 rows x 2 tasks)" \
  || fail "prediction files: $preds"
# answers must differ from item to item (or a mix-up of items would go unseen) and the stop id
# must end them at different lengths (or stopping inside a batch would not be exercised)
answers() { sed 's/.*"prediction":"\([^"]*\)".*/\1/' "$work/b1"/predictions/after_01/*.jsonl; }
distinct=$(answers | sort -u | wc -l)
lengths=$(answers | awk '{ print length($0) }' | sort -u | wc -l)
[ "$distinct" -ge 24 ] && [ "$lengths" -ge 3 ] \
  && pass "after task 1: $distinct different answers of $lengths different lengths" \
  || fail "after task 1: $distinct different answers of $lengths lengths: too alike to test"

same_as() { # REF NAME WHAT: run NAME's outputs against run REF's
  local ref=$1 name=$2 what=$3 f bad=""
  for f in $preds; do cmp -s "$work/$ref/$f" "$work/$name/$f" || bad="$bad $f"; done
  diff <(matrix "$work/$ref") <(matrix "$work/$name") >/dev/null || bad="$bad accuracy-matrix"
  if command -v h5dump >/dev/null; then
    diff <(results "$work/$ref") <(results "$work/$name") >/dev/null || bad="$bad results.h5"
  fi
  if [ -z "$bad" ]; then
    pass "$what: predictions, accuracy matrix and results.h5 identical"
  else
    fail "$what: differs in$bad"
    for f in $bad; do [ -f "$work/$ref/$f" ] && diff "$work/$ref/$f" "$work/$name/$f" | head -4; done
  fi
}
for bs in 5 16; do
  if run_with "b$bs" --set eval.batch_size="$bs"; then
    same_as b1 "b$bs" "eval.batch_size = $bs against 1"
  else
    fail "gorp run with eval.batch_size = $bs:"; tail -20 "$work/b$bs.log"
  fi
done
# mpi_run NAME RANKS [--set ...]: a run on RANKS ranks into $work/NAME
mpi_run() {
  local name=$1 ranks=$2
  shift 2
  OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 300 mpirun --allow-run-as-root \
    --oversubscribe -np "$ranks" "$GORP" run "$work/run.ini" --set run.out_dir="$work/$name" "$@" \
    >"$work/$name.log" 2>&1 || { fail "gorp run $name on $ranks ranks:"; tail -20 "$work/$name.log"; }
}
if command -v mpirun >/dev/null; then
  # the data-parallel ranks share the items: each rank's batches, the file in item order
  mpi_run dp2 2 --set parallel.dp=2 --set eval.batch_size=16 &&
    same_as b1 dp2 "2 data-parallel ranks, eval.batch_size = 16, against one rank, 1"
  # tensor parallelism sums partial products in another order than one rank: batched against
  # one prompt at a time on the same layout
  mpi_run tp2_b1 2 --set parallel.tp=2 --set eval.batch_size=1 &&
    mpi_run tp2_b16 2 --set parallel.tp=2 --set eval.batch_size=16 &&
    same_as tp2_b1 tp2_b16 "2 tensor-parallel ranks, eval.batch_size = 16 against 1"
fi

expect_error "eval.stop of two tokens refused naming the key, the text and its ids" \
  "eval.stop: 'ab' must be exactly one token.*encodes to 97 98" \
  "$GORP" run "$work/run.ini" --set run.out_dir="$work/bad" --set eval.stop=e,ab
grep -q " step " "$work/stdout.txt" && fail "a training step ran with a bad eval.stop" \
  || pass "no training step with a bad eval.stop"
expect_error "eval.batch_size = 0 refused" "eval.batch_size" \
  "$GORP" run "$work/run.ini" --set run.out_dir="$work/bad" --set eval.batch_size=0
finish
