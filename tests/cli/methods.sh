#!/usr/bin/env bash
# Every built method runs a two-task sequence of real mini data (SST-2 -> CB) with a tiny model to
# the end and reports accuracy; gorp runs with the paper's and the input-axis configuration. The
# README's claims change a run as documented: train.per_task (lr, max_steps, epochs, batch_size of
# one task only), data.substitute (replace, remove), gorp.project_lora / project_full (which bases
# exist, task 2 trains differently), seqlora (one pair) vs inclora (a pair per task), nlora (lambda
# 0 is inclora), mtl (one phase on the union, rows 0 and T). Bad method keys are refused before
# training, naming the key.
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
# each task line names the rates its steps use
grep -Eq "^task 1/2 .*batch [0-9]+, lora.lr [0-9.e-]+, full.lr [0-9.e-]+$" "$work/gorp.log" \
  && grep -Eq "^task 1/2 .*batch [0-9]+, lora.lr [0-9.e-]+$" "$work/inclora.log" \
  && grep -Eq "^mtl: .*batch [0-9]+, lr [0-9.e-]+$" "$work/mtl.log" \
  && pass "task lines name the rates in effect (gorp: lora.lr, full.lr; inclora: lora.lr; mtl: lr)" \
  || fail "task lines: $(grep -h '^task 1/2\|^mtl:' "$work/gorp.log" "$work/inclora.log" "$work/mtl.log")"

# --- each claim below must change the run, shown by its step losses (log_every = 1) or files ---
# losses NAME TASK: "step loss" lines of TASK in run NAME's log
losses() { awk -v t="$2" '$1 == t && $2 == "step" { print $3, $5 }' "$work/$1.log"; }
# groups NAME PREFIX: the HDF5 groups under PREFIX (e.g. /gorp/) in run NAME's last checkpoint
groups() {
  local ck="$work/$1/checkpoints"
  h5ls "$ck/$(cat "$ck/LATEST")/${2#/}" 2>/dev/null | awk '{ print $1 }'
}
logged() { # logged NAME SETTINGS...: run NAME with every step's loss printed
  local name=$1
  shift
  "$GORP" run "$work/m.ini" --set run.out_dir="$name" --set run.log_every=1 "$@" \
    >"$work/$name.log" 2>&1 || { fail "$name: exit $?"; tail -5 "$work/$name.log"; }
}

# train.per_task: each key applies to its task only (8 examples: 2 steps at batch 4)
logged pt_base --set run.method=seqft
logged pt_lr --set run.method=seqft --set "train.per_task=CB:lr=0.05"
[ "$(losses pt_lr SST-2)" = "$(losses pt_base SST-2)" ] && [ -n "$(losses pt_base SST-2)" ] \
  && [ "$(losses pt_lr CB | head -1)" = "$(losses pt_base CB | head -1)" ] \
  && [ "$(losses pt_lr CB | sed -n 2p)" != "$(losses pt_base CB | sed -n 2p)" ] \
  && pass "train.per_task CB:lr changes CB's second step only ($(losses pt_base CB | sed -n 2p) -> $(losses pt_lr CB | sed -n 2p))" \
  || fail "train.per_task CB:lr: SST-2 [$(losses pt_lr SST-2 | tr '\n' ' ')] CB [$(losses pt_lr CB | tr '\n' ' ')] vs [$(losses pt_base CB | tr '\n' ' ')]"
expect_error "a per-task lr for a LoRA method is refused naming the key and the method's rates" \
  "train.per_task sets lr for CB.*lora.lr and full.lr" \
  "$GORP" run "$work/m.ini" --set run.out_dir=pt_lora --set run.method=inclora \
  --set "train.per_task=CB:lr=0.05"
grep -Eq "^task 1/2 .*batch [0-9]+, lr [0-9.e-]+$" "$work/pt_base.log" \
  && pass "seqft's task line names train.lr" || fail "seqft task line: $(grep '^task 1' "$work/pt_base.log")"
logged pt_steps --set run.method=seqft --set "train.per_task=SST-2:max_steps=1"
[ "$(losses pt_steps SST-2 | wc -l)/$(losses pt_steps CB | wc -l)" = 1/2 ] \
  && pass "train.per_task max_steps: SST-2 1 step, CB 2" \
  || fail "train.per_task max_steps: $(losses pt_steps SST-2 | wc -l)/$(losses pt_steps CB | wc -l) steps, want 1/2"
logged pt_epochs --set run.method=seqft --set train.max_steps=0 \
  --set "train.per_task=CB:epochs=2, CB:batch_size=2"
[ "$(losses pt_epochs SST-2 | wc -l)/$(losses pt_epochs CB | wc -l)" = 2/8 ] \
  && pass "train.per_task epochs and batch_size: SST-2 2 steps (8/4), CB 8 (8/2 x 2 epochs)" \
  || fail "train.per_task epochs/batch_size: $(losses pt_epochs SST-2 | wc -l)/$(losses pt_epochs CB | wc -l) steps, want 2/8"

# data.substitute: mini has no yahoo; order1 = dbpedia amazon yahoo agnews
sub=(--set model.max_seq=512 --set data.tasks= --set data.order=order1 --set data.orders="$GORP_SRC/inputs/orders.txt"
  --set train.max_steps=1 --set data.max_train_per_task=4 --set data.max_test_per_task=1)
expect_error "order1 on mini without a substitute names the missing dataset" "yahoo" \
  "$GORP" run "$work/m.ini" --set run.out_dir=nosub "${sub[@]}"
logged sub_yelp "${sub[@]}" --set data.substitute=yahoo=yelp
grep -q "^task 3/4 SC/yelp:" "$work/sub_yelp.log" && [ "$(losses sub_yelp yelp | wc -l)" = 1 ] \
  && ! grep -q yahoo "$work/sub_yelp.log" && pass "data.substitute yahoo=yelp trains yelp third of 4" \
  || fail "data.substitute yahoo=yelp: $(grep '^task' "$work/sub_yelp.log" | tr '\n' ';')"
logged sub_drop "${sub[@]}" --set data.substitute=yahoo=
[ "$(grep -c '^task [0-9]/3 ' "$work/sub_drop.log")" = 3 ] && grep -q "^task 3/3 TC/agnews:" "$work/sub_drop.log" \
  && pass "data.substitute yahoo= removes it: 3 tasks, agnews third" \
  || fail "data.substitute yahoo=: $(grep '^task' "$work/sub_drop.log" | tr '\n' ';')"

# gorp's ablation switches: which bases exist, and what task 2 trains (task 1 has no bases yet)
# differs from the run with both on exactly in the switched-off matrices
differ() { # differ RUN_A RUN_B REGEX: largest |difference| of the last checkpoints' matching datasets
  "$GORP_PYTHON" - "$work/$1/checkpoints" "$work/$2/checkpoints" "$3" <<'PY'
import re, sys, h5py, numpy as np
def ds(ck):
    out = {}
    with h5py.File(f"{ck}/" + open(f"{ck}/LATEST").read().strip(), "r") as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset)
                     and re.search(sys.argv[3], n) else None)
    return out
a, b = ds(sys.argv[1]), ds(sys.argv[2])
print(f"{max((float(np.abs(a[k] - b[k]).max()) for k in a), default=-1):.2e}" if a.keys() == b.keys() else "-1")
PY
}
ab=(--set run.method=gorp --set train.epochs=2 --set train.max_steps=4 --set train.lr=1e-2)
logged ab_both "${ab[@]}"
logged ab_nolora "${ab[@]}" --set gorp.project_lora=false
logged ab_nofull "${ab[@]}" --set gorp.project_full=false
for run in ab_both ab_nolora ab_nofull; do
  n_lora=$(groups $run /gorp/ | grep -c lora_A)
  n_full=$(groups $run /gorp/ | grep -c '\.weight$')
  case $run in
  ab_both) want="$n_lora -gt 0 && $n_full -gt 0" ;;
  ab_nolora) want="$n_lora -eq 0 && $n_full -gt 0" ;;
  ab_nofull) want="$n_lora -gt 0 && $n_full -eq 0" ;;
  esac
  eval "[[ $want ]]" && pass "$run: $n_lora LoRA A bases, $n_full full-rank bases" \
    || fail "$run: $n_lora LoRA A bases, $n_full full-rank bases"
done
d=$(differ ab_both ab_nolora '^lora/task_02/.*/A$')
awk -v d="$d" 'BEGIN { exit !(d > 0) }' && [ "$(losses ab_nolora SST-2)" = "$(losses ab_both SST-2)" ] \
  && pass "gorp.project_lora=false: task 1 as with both on, task 2's LoRA A differ (by $d)" \
  || fail "gorp.project_lora=false: task 2's LoRA A differ by $d"
d=$(differ ab_both ab_nofull '^model/.*mlp\.gate_proj\.weight$')
awk -v d="$d" 'BEGIN { exit !(d > 0) }' && [ "$(losses ab_nofull SST-2)" = "$(losses ab_both SST-2)" ] \
  && pass "gorp.project_full=false: task 1 as with both on, the full-rank target differs (by $d)" \
  || fail "gorp.project_full=false: the full-rank target differs by $d"

# seqlora reuses one pair, inclora adds one per task; nlora with lambda 0 is inclora, not with 0.4
logged b_seqlora --set run.method=seqlora
logged b_inclora --set run.method=inclora
[ "$(groups b_seqlora /lora/ | tr '\n' ' ')" = "task_01 " ] \
  && [ "$(groups b_inclora /lora/ | tr '\n' ' ')" = "task_01 task_02 " ] \
  && pass "seqlora keeps one LoRA pair over 2 tasks, inclora two" \
  || fail "LoRA pairs: seqlora [$(groups b_seqlora /lora/ | tr '\n' ' ')], inclora [$(groups b_inclora /lora/ | tr '\n' ' ')]"
[ "$(losses b_seqlora CB)" != "$(losses b_inclora CB)" ] && [ "$(losses b_seqlora SST-2)" = "$(losses b_inclora SST-2)" ] \
  && pass "seqlora and inclora agree on task 1 and differ on task 2" || fail "seqlora vs inclora losses"
logged b_nlora0 --set run.method=nlora --set lora.nlora_lambda=0
logged b_nlora --set run.method=nlora
all_losses() { losses "$1" SST-2; losses "$1" CB; }
[ "$(all_losses b_nlora0)" = "$(all_losses b_inclora)" ] && [ "$(all_losses b_nlora)" != "$(all_losses b_inclora)" ] \
  && pass "nlora: lambda 0 gives inclora's losses, lambda 0.4 does not" \
  || fail "nlora: [$(all_losses b_nlora0 | tr '\n' ' ')] / [$(all_losses b_nlora | tr '\n' ' ')] vs inclora [$(all_losses b_inclora | tr '\n' ' ')]"

# mtl: one training phase on the union, only rows 0 and T measured
logged b_mtl --set run.method=mtl --set train.max_steps=0
if grep -q "^mtl: 16 training examples of 2 tasks at once" "$work/b_mtl.log" \
  && [ "$(losses b_mtl mtl | wc -l)" = 4 ] && [ -z "$(losses b_mtl SST-2)" ] \
  && "$GORP_PYTHON" - "$work/b_mtl/results.h5" <<'PY'; then
import sys, h5py, numpy as np
a = h5py.File(sys.argv[1], "r")["acc_matrix"][()]
sys.exit(not (a.shape == (3, 2) and np.isfinite(a[[0, 2]]).all() and np.isnan(a[1]).all()))
PY
  pass "mtl: 16 examples of both tasks in one phase of 4 steps; rows 0 and 2 measured, row 1 not"
else
  fail "mtl:"; grep -E "^mtl|step" "$work/b_mtl.log" | head -8
fi

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
