#!/usr/bin/env bash
# What a resume compares (docs/CHECKPOINT.md, docs/CONFIG.md "What the hashes cover"): a run
# crashed inside a save, started as /abs/cfg/k.ini from /, resumes as k.ini from /abs/cfg (and
# through a link) with pretrain.*, logging and checkpoint keys changed, and ends bit-identical to
# an uninterrupted run; a changed train.lr is refused even with --force-config (also when it equals
# lora.lr, which a section-blind comparison took for unchanged); a moved input needs
# --force-config. A checkpoint records its thread counts: resuming with others warns, the same
# count does not, and `gorp inspect` shows them. gorp pretrain reuses its base while only keys it
# does not read change.
. "$(dirname "$0")/lib.bash"

cfg="$work/cfg"
mkdir -p "$cfg"
ln -s cfg "$work/link"
cat >"$cfg/k.ini" <<INI
[run]
out_dir = out
log_every = 100
checkpoint_every = 2
[model]
hidden_size = 32
intermediate_size = 40
num_layers = 1
num_heads = 2
max_seq = 128
[data]
format = synthetic
tasks = syn-dbpedia, syn-amazon
synthetic_train = 16
synthetic_test = 4
[train]
batch_size = 4
max_steps = 3
[eval]
max_new_tokens = 4
[pretrain]
out = base.h5
steps = 4
batch_size = 4
warmup = 1
INI
one=(env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1)
two=(env OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2)
ck="$cfg/out/checkpoints"

(cd / && "${one[@]}" "$GORP" run "$cfg/k.ini" --set run.out_dir=ref >"$work/ref.log" 2>&1) \
  || { fail "reference run"; tail -5 "$work/ref.log"; }
# seqft: model.h5 holds every trained weight, so equal files mean the same training
(cd / && "${one[@]}" GORP_FAULT_SAVE_ABORT=3 "$GORP" run "$cfg/k.ini" >"$work/crash.log" 2>&1) \
  2>/dev/null
[ -s "$ck/LATEST" ] && [ ! -e "$cfg/out/model.h5" ] \
  && pass "the run named /abs/cfg/k.ini from / crashed inside save 3, checkpoints kept" \
  || fail "crash inside a save: $(ls "$ck" 2>&1)"

cd "$cfg" || exit 1
expect_error "train.lr changed (to lora.lr's value) is refused" "train.lr differ \(these change" \
  "${one[@]}" "$GORP" run k.ini --set train.lr=2e-4
expect_error "train.lr changed is refused with --force-config too" "train.lr differ" \
  "${one[@]}" "$GORP" run k.ini --set train.lr=0.5 --force-config
expect_error "a moved input needs --force-config" "data.root differ.*--force-config" \
  "${one[@]}" "$GORP" run k.ini --set data.root="$work"

"${one[@]}" "$GORP" run k.ini --set pretrain.steps=9 --set pretrain.out=/elsewhere/b.h5 \
  --set run.log_every=1 --set run.checkpoint_keep=3 --set run.checkpoint_every=0 \
  >"$work/resume.log" 2>"$work/resume.err"
rc=$?
if [ $rc -eq 0 ] && grep -q "resuming from out/checkpoints/ckpt_" "$work/resume.log" \
  && h5diff -q "$cfg/out/model.h5" "$cfg/ref/model.h5" \
  && h5diff -q --exclude-path /run "$cfg/out/results.h5" "$cfg/ref/results.h5"; then
  pass "k.ini from its folder, pretrain/logging/checkpoint keys changed: resumed, bit-identical"
else
  fail "resume by another path (exit $rc):"; tail -n 5 "$work/resume.log" "$work/resume.err"
fi
grep -q "warning" "$work/resume.err" && fail "a warning with the same thread count:
$(cat "$work/resume.err")" || pass "same thread count: no warning"

# thread counts: written with 1, resumed with 2 (through the link, the third spelling)
(cd / && "${one[@]}" GORP_FAULT_SAVE_ABORT=3 "$GORP" run "$cfg/k.ini" --set run.out_dir=t2 \
  >"$work/crash2.log" 2>&1) 2>/dev/null
"$GORP" inspect "$cfg/t2/checkpoints/$(cat "$cfg/t2/checkpoints/LATEST")" >"$work/inspect.log" 2>&1 \
  && grep -q "written with 1 OpenMP / 1 OpenBLAS threads per rank" "$work/inspect.log" \
  && pass "gorp inspect shows the thread counts" || { fail "inspect:"; cat "$work/inspect.log"; }
(cd / && "${two[@]}" "$GORP" run "$work/link/k.ini" --set run.out_dir=t2 >"$work/t2.log" \
  2>"$work/t2.err")
rc=$?
if [ $rc -eq 0 ] && grep -q "resuming from" "$work/t2.log" && grep -q \
  "written with 1 OpenMP / 1 OpenBLAS threads per rank, resuming with 2 / 2: results will not be bit-identical" \
  "$work/t2.err"; then
  pass "resumed with 2 threads after 1: warned"
else
  fail "thread-count warning (exit $rc):"; cat "$work/t2.err"
fi

# gorp pretrain reuses its base while only keys it does not read change
(cd / && "$GORP" pretrain "$cfg/k.ini" >"$work/pre.log" 2>&1) && [ -s "$cfg/base.h5.key" ] \
  || fail "pretrain: $(tail -3 "$work/pre.log")"
"$GORP" pretrain k.ini --set train.lr=0.5 --set run.method=inclora --set lora.r=4 \
  >"$work/pre2.log" 2>&1 && grep -q "up to date" "$work/pre2.log" \
  && pass "pretrain from another folder, fine-tuning keys changed: the base is reused" \
  || { fail "pretrain reuse:"; tail -3 "$work/pre2.log"; }
"$GORP" pretrain k.ini --set train.weight_decay=0.1 >"$work/pre3.log" 2>&1 \
  && ! grep -q "up to date" "$work/pre3.log" && pass "a key pretrain reads (train.weight_decay) retrains" \
  || fail "train.weight_decay changed, the old base reused"
finish
