#!/usr/bin/env bash
# SIGUSR1 inside an evaluation row (docs/CHECKPOINT.md "Stopping inside an evaluation"): the run
# finishes the current batch, publishes the finished answers of the cell as a .partial file,
# checkpoints (exit 75), and the resumed run decodes only the rest, in the same batches; it ends
# with results.h5 and every predictions file identical to an uninterrupted run's. The signal is
# timed by GORP_FAULT_EVAL_SIGNAL=k (rank 0 sends itself SIGUSR1 after its k-th evaluation batch),
# so it lands inside a row whatever the machine's speed. Stops: in the zero-shot row, twice in one
# cell (a resumed cell stopped again), in the row after task 1, on two data-parallel and on two
# tensor-parallel ranks (the signal reaches rank 0 only; both stop). eval.zero_shot = false leaves
# row 0 unmeasured and says that FWT is not available.
. "$(dirname "$0")/lib.bash"

root="$GORP_DATA/CL_Benchmark/mini"
cat >"$work/run.ini" <<INI
[run]
out_dir = ref
checkpoint_every = 0
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
batch_size = 4
stop = e
INI

# less the line naming the file and /run (config and times)
results() { h5dump "$1/results.h5" 2>&1 | tail -n +2 | sed '/^   GROUP "run" {$/,/^   }$/d'; }
run_with() {                                            # NAME [--set ...]: a run into $work/NAME
  local name=$1
  shift
  "$GORP" run "$work/run.ini" --set run.out_dir="$work/$name" "$@" >>"$work/$name.log" 2>&1
}
# stop_at NAME K WHAT [--set ...]: a run stopped after its K-th evaluation batch must exit 75
stop_at() {
  local name=$1 k=$2 what=$3 rc
  shift 3
  GORP_FAULT_EVAL_SIGNAL=$k run_with "$name" "$@"
  rc=$?
  if [ "$rc" = 75 ] && grep -q "stopped by a signal while evaluating" "$work/$name.log"; then
    pass "$what: exit 75 after batch $k"
  else
    fail "$what: exit $rc after batch $k, expected 75"; tail -5 "$work/$name.log"
  fi
}
same_as_ref() { # NAME WHAT [REF]: run NAME's outputs against the uninterrupted run REF's (ref)
  local name=$1 what=$2 ref=${3:-ref} bad="" f
  local got want
  want=$(cd "$work/$ref" && find predictions -type f | sort)
  got=$(cd "$work/$name" && find predictions -type f | sort)
  [ "$got" = "$want" ] || bad=" the list of prediction files ($(echo $got))"
  for f in $want; do cmp -s "$work/$ref/$f" "$work/$name/$f" || bad="$bad $f"; done
  diff <(results "$work/$ref") <(results "$work/$name") >/dev/null || bad="$bad results.h5"
  [ -z "$bad" ] && pass "$what: results.h5 and every predictions file identical to the uninterrupted run" \
    || fail "$what: differs in$bad"
}

run_with ref || { fail "uninterrupted run"; tail -20 "$work/ref.log"; }
n_files=$(cd "$work/ref" && find predictions -name '*.jsonl' | wc -l)
[ "$n_files" = 6 ] && pass "uninterrupted run: 6 prediction files" || fail "$n_files prediction files"

# 24 prompts per cell, 4 per batch: 6 batches a cell, 12 in the zero-shot row
stop_at z 3 "zero-shot row, cell 1"
part="$work/z/predictions/after_00/SST-2.jsonl.partial"
[ "$(wc -l <"$part" 2>/dev/null)" = 12 ] && pass "the stopped cell left its 12 finished answers" \
  || fail "partial file: $(wc -l <"$part" 2>&1)"
[ ! -e "$work/z/predictions/after_00/agnews.jsonl" ] && pass "the next cell was not started" \
  || fail "agnews evaluated after the stop"
ck="$work/z/checkpoints/$(cat "$work/z/checkpoints/LATEST")"
grep -q "tasks done: 0; the evaluation row after them was stopped at task 1" <("$GORP" inspect "$ck" 2>&1) \
  && "$GORP" inspect --verify "$ck" >/dev/null 2>&1 \
  && pass "gorp inspect names the position (eval_task 1) and --verify accepts the checkpoint" \
  || fail "gorp inspect: $("$GORP" inspect "$ck" 2>&1 | grep -i task)"
stop_at z 2 "the resumed cell stopped again"
grep -q "SST-2 *resumed: 12 of this rank's 24 prompts" "$work/z.log" \
  && pass "resume decodes only the 12 unanswered prompts" || fail "no 'resumed: 12' line"
[ "$(wc -l <"$part" 2>/dev/null)" = 20 ] && pass "second stop: 20 answers in the partial file" \
  || fail "partial file after the second stop: $(wc -l <"$part" 2>&1)"
run_with z || { fail "resume to the end"; tail -20 "$work/z.log"; }
grep -q "SST-2 *resumed: 20 of this rank's 24 prompts" "$work/z.log" \
  && pass "second resume decodes the last 4 prompts" || fail "no 'resumed: 20' line"
same_as_ref z "stopped twice in the zero-shot row"

# a partial file that is not prediction lines is refused naming it and the line; a missing one
# (deleted, or a fallback past the stop) means decoding the cell from its start
stop_at bad 3 "zero-shot row again"
part="$work/bad/predictions/after_00/SST-2.jsonl.partial"
printf '{"id": 3, "prediction": 7}\n' >>"$part"
expect_error "a damaged partial file is refused naming the file and line" \
  "SST-2.jsonl.partial: line 13 is not a prediction line" \
  "$GORP" run "$work/run.ini" --set run.out_dir="$work/bad"
rm "$part"
run_with bad || { fail "resume without the partial file"; tail -20 "$work/bad.log"; }
grep -q "no .*SST-2.jsonl.partial: decoding every prompt" "$work/bad.log" \
  && pass "a missing partial file: the cell decoded from its start" || fail "no 'decoding every prompt'"
same_as_ref bad "resumed without the partial file"

# batches 13-24: the row after task 1 (SST-2 then agnews)
stop_at t1 21 "row after task 1, cell 2"
run_with t1 || { fail "resume to the end"; tail -20 "$work/t1.log"; }
grep -q "agnews *resumed: 12 of this rank's 24 prompts" "$work/t1.log" \
  && pass "row 1 resumed in its second cell" || fail "no 'agnews resumed: 12' line"
# both runs log into t1.log: task 1 trained by the first only, SST-2 of row 1 evaluated once
[ "$(grep -c "^task 1/2" "$work/t1.log")" = 1 ] && [ "$(grep -c "eval SST-2 .*exact" "$work/t1.log")" = 3 ] \
  && pass "the resume neither trains task 1 nor evaluates row 1's first cell again (SST-2: rows 0, 1, 2 once each)" \
  || fail "work done twice: $(grep -E "^task|exact" "$work/t1.log")"
same_as_ref t1 "stopped in the row after task 1"

# mtl evaluates row 0, trains once, then row 2 (T = 2): batches 13-24, a stop in its 2nd cell
run_with mtl_ref --set run.method=mtl || { fail "mtl run"; tail -20 "$work/mtl_ref.log"; }
stop_at mtl 21 "mtl, last row, cell 2" --set run.method=mtl
run_with mtl --set run.method=mtl || { fail "mtl resume"; tail -20 "$work/mtl.log"; }
[ "$(grep -c "^mtl: " "$work/mtl.log")" = 1 ] && pass "mtl: trained once" || fail "mtl trained again"
same_as_ref mtl "mtl stopped in its last row" mtl_ref

if command -v mpirun >/dev/null; then
  mpi() { # NAME LAYOUT [--set ...]: a 2-rank run (LAYOUT: dp or tp) into $work/NAME
    local name=$1 layout=$2
    shift 2
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 300 mpirun \
      --allow-run-as-root --oversubscribe -np 2 "$GORP" run "$work/run.ini" \
      --set run.out_dir="$work/$name" --set parallel.$layout=2 "$@" >>"$work/$name.log" 2>&1
  }
  # dp: each rank 12 prompts a cell, 3 batches; tp: both ranks all 24, 6 batches. Rank 0 is
  # signalled after its 2nd batch; both ranks must stop there.
  for layout in dp tp; do
    mpi "${layout}_ref" $layout || fail "$layout = 2 uninterrupted run"
    GORP_FAULT_EVAL_SIGNAL=2 mpi $layout $layout
    rc=$?
    [ "$rc" = 75 ] && pass "$layout = 2, signal on rank 0 only: both ranks stop, exit 75" \
      || { fail "$layout = 2 stop: exit $rc"; tail -5 "$work/$layout.log"; }
    want=8 # 2 batches of 4; with dp, of each rank
    [ $layout = dp ] && want=16
    [ "$(wc -l <"$work/$layout/predictions/after_00/SST-2.jsonl.partial" 2>/dev/null)" = $want ] \
      && pass "$layout = 2: the $want answers of the ranks' 2 batches in the partial file" \
      || fail "$layout partial: $(wc -l <"$work/$layout/predictions/after_00/SST-2.jsonl.partial" 2>&1)"
    mpi $layout $layout || fail "$layout = 2 resume"
    same_as_ref $layout "$layout = 2 stopped in the zero-shot row" "${layout}_ref"
  done
fi

# eval.zero_shot = false: row 0 unmeasured in results.h5, FWT n/a in the printed summary
run_with noz --set eval.zero_shot=false || { fail "eval.zero_shot = false"; tail "$work/noz.log"; }
[ ! -e "$work/noz/predictions/after_00" ] && pass "zero_shot = false: no after_00 predictions" \
  || fail "after_00 written"
grep -q "FWT n/a" "$work/noz.log" && grep -q "FWT n/a: eval.zero_shot = false" "$work/noz.log" \
  && pass "summary says FWT n/a and why" || fail "summary: $(grep '^AP' "$work/noz.log")"
"$GORP_PYTHON" - "$work/noz/results.h5" "$work/ref/results.h5" <<'PY' && pass "results.h5: row 0 NaN, FWT NaN, rows 1-2 as the run with the zero-shot row" || fail "results.h5 of zero_shot = false"
import sys, h5py, numpy as np
a, r = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
acc, ref = a["acc_matrix"][...], r["acc_matrix"][...]
assert np.isnan(acc[0]).all() and np.isnan(a["in_list"][0]).all(), acc
assert np.array_equal(acc[1:], ref[1:], equal_nan=True), (acc, ref)
assert np.isnan(a.attrs["FWT"]) and not np.isnan(r.attrs["FWT"])
assert a.attrs["AP"] == r.attrs["AP"] and a.attrs["BWT"] == r.attrs["BWT"]
PY
finish
