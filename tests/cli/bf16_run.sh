#!/usr/bin/env bash
# model.dtype = bf16 in whole runs (docs/ARCHITECTURE.md "bf16 weights"): every method runs a
# two-task sequence of real mini data to the end; a gorp run holds its frozen matrices as
# bfloat16 datasets (uint16 + dtype attribute, widened exactly by numpy) in model.h5 and in its
# checkpoints, its trainable gate and the norms in fp32, and a crash inside a checkpoint save
# resumes bit-identical to the uninterrupted run, both from random weights (full checkpoints) and
# on an fp32 base file (lean checkpoints, the base rounded as it is read); a resume that changes
# model.dtype is refused naming the key; model.trained_products = bf16 trains to bf16 rounding of
# the fp32 products and resumes bit-identical; two tensor-parallel ranks train what one rank
# trains (to bf16 rounding).
. "$(dirname "$0")/lib.bash"

small_run_config "$work/c.ini"

# losses_close A.log B.log LO HI: the two runs' logged losses (run.log_every = 1) agree, their
# worst relative difference above LO and below HI
losses_close() {
  "$GORP_PYTHON" - "$@" <<'PY'
import re, sys
def losses(p):
    return [float(x) for x in re.findall(r"step +\d+/\d+ +loss ([0-9.]+)", open(p).read())]
a, b = losses(sys.argv[1]), losses(sys.argv[2])
assert len(a) == len(b) > 2, (len(a), len(b))
worst = max(abs(x - y) / abs(x) for x, y in zip(a, b))
print(f"worst relative loss difference {worst:.1e} over {len(a)} steps")
assert float(sys.argv[3]) < worst < float(sys.argv[4]), worst
PY
}
export OMP_NUM_THREADS=1
cat >"$work/b.ini" <<INI
include = c.ini
[model]
dtype = bf16
INI

# every method, two tasks, bf16 weights
for method in seqft seqlora inclora olora nlora galore gorp mtl; do
  if "$GORP" run "$work/b.ini" --set run.method=$method --set run.out_dir="$work/m-$method" \
    --set train.max_steps=2 >"$work/m.log" 2>&1 && grep -q "^AP " "$work/m.log"; then
    pass "$method runs with model.dtype = bf16: $(grep -o 'model.dtype = bf16: [0-9]* frozen' "$work/m.log" || echo 'nothing frozen')"
  else
    fail "$method with model.dtype = bf16"; tail -5 "$work/m.log"
  fi
done

# which datasets are bf16: every frozen matrix; gate (full-rank target) and norms fp32
"$GORP_PYTHON" - "$work/m-gorp/model.h5" "$work/m-gorp/checkpoints" <<'PY' && pass "model.h5 and checkpoints: frozen matrices bfloat16, gate and norms fp32, widened exactly" || fail "bf16 datasets"
import os, sys, h5py, numpy as np
def check(path, merged):
    with h5py.File(path, "r") as f:
        for name, d in f["model"].items():
            bf16 = d.attrs.get("dtype") == b"bfloat16"
            # merged adapters (q, v of gorp's LoRA) are written in fp32 in model.h5
            want = d.ndim == 2 and "gate_proj" not in name and not (merged and ("q_proj" in name or "v_proj" in name))
            assert bf16 == want, (path, name, d.dtype, d.attrs.get("dtype"))
            assert d.dtype == (np.uint16 if bf16 else np.float32), (name, d.dtype)
            if bf16:
                w = (d[()].astype(np.uint32) << 16).view(np.float32)
                assert np.isfinite(w).all() and np.abs(w).max() > 0, name
check(sys.argv[1], True)
ck = sys.argv[2]
check(os.path.join(ck, open(os.path.join(ck, "LATEST")).read().strip()), False)
PY

# crash inside the 2nd checkpoint save, resume: bit-identical (random weights: full checkpoints)
crash_resume() { # NAME INI [--set ...]: the run in $work/NAME vs the uninterrupted $work/NAME-ref
  local name=$1 ini=$2
  shift 2
  "$GORP" run "$ini" --set run.out_dir="$work/$name-ref" "$@" >"$work/$name-ref.log" 2>&1 ||
    { fail "$name: reference run"; tail -5 "$work/$name-ref.log"; return; }
  (GORP_FAULT_SAVE_ABORT=2 "$GORP" run "$ini" --set run.out_dir="$work/$name" "$@" >/dev/null 2>&1) 2>/dev/null
  if "$GORP" run "$ini" --set run.out_dir="$work/$name" "$@" >"$work/$name.log" 2>&1 &&
    grep -q "resuming from" "$work/$name.log" && same_run "$work/$name" "$work/$name-ref"; then
    pass "$name: a crash inside a checkpoint save resumes bit-identical to the uninterrupted run"
  else
    fail "$name: crash and resume"; tail -5 "$work/$name.log"
  fi
}
crash_resume random "$work/b.ini"

# on an fp32 base file: lean checkpoints (gate only), the base rounded to bf16 as it is read
"$GORP" run "$work/c.ini" --set run.method=seqft --set data.tasks=SST-2 \
  --set run.out_dir="$work/base" >"$work/base.log" 2>&1 || { fail "base run"; tail "$work/base.log"; }
crash_resume lean "$work/b.ini" --set model.init="$work/base/model.h5"
"$GORP_PYTHON" - "$work/lean-ref/checkpoints" <<'PY' && pass "bf16 on an fp32 base: lean checkpoints hold the gate only" || fail "lean bf16 checkpoint contents"
import os, sys, h5py
ck = sys.argv[1]
with h5py.File(os.path.join(ck, open(os.path.join(ck, "LATEST")).read().strip()), "r") as f:
    assert "base" in f and sorted(f["model"]) == ["model.layers.0.mlp.gate_proj.weight"], list(f["model"])
PY

# model.dtype is part of the run: a resume with another dtype is refused, naming the key
rm -f "$work/random-ref/model.h5"
expect_error "resume with model.dtype changed" "model.dtype" \
  "$GORP" run "$work/c.ini" --set run.out_dir="$work/random-ref" --set model.dtype=fp32

# model.trained_products = bf16: what trains multiplies in bf16 too (gorp: the gate; seqft: every
# matrix, the tied embedding and head included); the losses follow the fp32 products' to bf16
# rounding without equalling them, and a crash inside a save still resumes bit-identical
for method in gorp seqft; do
  for tp in fp32 bf16; do
    "$GORP" run "$work/b.ini" --set run.method=$method --set model.trained_products=$tp \
      --set run.log_every=1 --set run.out_dir="$work/tp-$method-$tp" >"$work/tp-$method-$tp.log" 2>&1 ||
      { fail "$method with model.trained_products = $tp"; tail -5 "$work/tp-$method-$tp.log"; }
  done
  losses_close "$work/tp-$method-fp32.log" "$work/tp-$method-bf16.log" 0 2e-2 &&
    pass "$method: trained products in bf16 follow the fp32 products' losses (within 2e-2, not equal)" ||
    fail "$method: trained products in bf16 vs fp32"
done
crash_resume trained "$work/b.ini" --set model.trained_products=bf16

if command -v mpirun >/dev/null; then
  "$GORP" run "$work/b.ini" --set run.log_every=1 --set run.out_dir="$work/tp1" >"$work/tp1.log" 2>&1 ||
    { fail "tp = 1 bf16 run"; tail "$work/tp1.log"; }
  mpirun --allow-run-as-root --oversubscribe -np 2 "$GORP" run "$work/b.ini" --set parallel.tp=2 \
    --set run.log_every=1 --set run.out_dir="$work/tp2" >"$work/tp2.log" 2>&1 ||
    { fail "tp = 2 bf16 run"; tail "$work/tp2.log"; }
  losses_close "$work/tp1.log" "$work/tp2.log" -1 1e-2 &&
    pass "tp = 2 trains what tp = 1 trains with bf16 weights (losses within 1e-2)" ||
    fail "tp = 2 vs tp = 1 bf16 losses"
  mpirun --allow-run-as-root --oversubscribe -np 2 "$GORP" run "$work/b.ini" --set parallel.tp=2 \
    --set model.trained_products=bf16 --set run.log_every=1 --set run.out_dir="$work/tp2t" \
    >"$work/tp2t.log" 2>&1 || { fail "tp = 2 run with trained products in bf16"; tail "$work/tp2t.log"; }
  losses_close "$work/tp-gorp-bf16.log" "$work/tp2t.log" -1 1e-2 &&
    pass "tp = 2 trains what tp = 1 trains with trained products in bf16 (losses within 1e-2)" ||
    fail "tp = 2 vs tp = 1 with trained products in bf16"
fi
finish
