#!/usr/bin/env bash
# run.backend = cuda against run.backend = cpu: every method of methods.sh (seqft, seqlora, inclora,
# olora, nlora, galore, gorp, mtl) runs the same small synthetic config for 20 steps (two tasks of
# 10 steps; mtl one phase of 20) on each backend, and every logged step loss of the cuda run must
# agree with the cpu run's within a relative RTOL. Without a usable GPU (gorp refuses run.backend =
# cuda: no usable GPU, built without CUDA, or the CUDA module not found) it prints
# "SKIP: <gorp's message>" and exits 77, which tests/CMakeLists.txt registers as skipped; any other
# refusal, a CUDA module beside gorp that does not link (undefined symbols), a cuda run that
# fails, or losses that differ fail the test. Needs no data folder and no Python (the synthetic
# suite; awk compares). bench/gpu_check.sh runs it on a GPU machine.
#
# RTOL = 1e-4: both backends compute in fp32, but cuBLAS sums each product's k terms in another
# order and blocking than OpenBLAS, so a product differs by a few ulps (~1e-7 relative, growing
# about as sqrt(k)), and 20 optimizer steps carry such differences into the weights: the losses
# are expected to agree to about 1e-6 relative. 1e-4 leaves a factor of ~100 for that growth while
# a wrong product (a transposed or stale operand, beta ignored, a sub-block read past its end)
# moves the loss in its second or third digit. TF32 products (10-bit mantissa, ~5e-4 relative per
# product: NVIDIA_TF32_OVERRIDE=1, or a TF32 math mode) are not fp32 and are expected to fail it.
. "$(dirname "$0")/lib.bash"
rtol=1e-4
# about 20 gorp runs: without Open MPI's singleton daemon each starts in half the time
export OMPI_MCA_ess_singleton_isolated=1

cat >"$work/c.ini" <<INI
[run]
log_every = 1
seed = 3
[model]
hidden_size = 32
intermediate_size = 48
num_layers = 2
num_heads = 4
num_kv_heads = 2
max_seq = 256
init_std = 0.3
[data]
format = synthetic
tasks = syn-dbpedia, syn-amazon
synthetic_train = 40
synthetic_test = 2
[train]
batch_size = 4
max_steps = 10
lr = 1e-3
[lora]
targets = q, v
r = 4
lr = 1e-3
[full]
targets = gate
rank = 2
update_gap = 1
lr = 1e-3
[eval]
max_new_tokens = 2
zero_shot = false
INI

# --- is there a GPU gorp can use? A one-step run on cuda says. -----------------------------------
if ! timeout -k 10 120 "$GORP" run "$work/c.ini" --set run.backend=cuda --set run.out_dir="$work/probe" \
  --set data.tasks=syn-dbpedia --set train.max_steps=1 >"$work/probe.log" 2>&1; then
  reason=$(grep -E "no usable GPU|built without CUDA|cannot load the CUDA module" "$work/probe.log" | head -1)
  # a module (beside gorp, or $GORP_CUDA_MODULE) whose libraries are all found but which leaves
  # symbols undefined is a broken build, not a machine without CUDA: that fails (gorp names the
  # last place it tried, not this one)
  module=${GORP_CUDA_MODULE:-$(dirname "$GORP")/libgorp_cuda.so}
  if [[ $reason == *"cannot load the CUDA module"* ]] && [ -f "$module" ] \
    && ! ldd -r "$module" 2>&1 | grep -q "not found" && ldd -r "$module" 2>&1 | grep -q "undefined symbol"; then
    reason=
    echo "$module does not link:" >>"$work/probe.log"
    ldd -r "$module" 2>&1 | grep "undefined symbol" | head -5 >>"$work/probe.log"
  fi
  if [ -n "$reason" ]; then
    echo "SKIP: ${reason#gorp: error: }"
    exit 77
  fi
  fail "gorp run with run.backend=cuda failed, not for want of a GPU:"
  sed 's/^/    /' "$work/probe.log"
  finish
  exit
fi
pass "run.backend=cuda starts: $(grep -m1 '^gorp run:' "$work/probe.log" | sed 's/.*), //')"

# losses LOG: "TASK STEP LOSS" for every step line of a gorp run's log (log_every = 1)
losses() { awk '$2 == "step" && $4 == "loss" { print $1, $3, $5 }' "$1"; }
# compare NAME CPU_LOG CUDA_LOG: the same 20 steps, each loss within rtol (relative)
compare() {
  local name=$1 verdict
  losses "$2" >"$work/$name.cpu"
  losses "$3" >"$work/$name.cuda"
  # line by line: "TASK STEP LOSS|TASK STEP LOSS" (cpu|cuda); a missing line leaves its half empty
  verdict=$(paste -d '|' "$work/$name.cpu" "$work/$name.cuda" | awk -F '|' -v rtol="$rtol" \
    -v num='^-?[0-9]+([.][0-9]+)?([eE][-+]?[0-9]+)?$' \
    -v n_cpu="$(wc -l <"$work/$name.cpu")" -v n_cuda="$(wc -l <"$work/$name.cuda")" '
    function abs(x) { return x < 0 ? -x : x }
    {
      split($1, c, " "); split($2, g, " ")
      if (c[1] != g[1] || c[2] != g[2]) { bad = bad " line " NR ": cpu [" $1 "] cuda [" $2 "]"; next }
      # finite numbers only: awk (mawk) would read "nan" as a number that compares equal to anything
      if (c[3] !~ num || g[3] !~ num) { bad = bad " " c[1] " step " c[2] ": cpu " c[3] " cuda " g[3]; next }
      d = abs(c[3] - g[3]); s = (abs(c[3]) > abs(g[3]) ? abs(c[3]) : abs(g[3]))
      r = s > 0 ? d / s : d
      if (r > worst) { worst = r; at = c[1] " step " c[2] " (cpu " c[3] ", cuda " g[3] ")" }
      if (!(r <= rtol)) bad = bad " " c[1] " step " c[2] ": cpu " c[3] " cuda " g[3] " (" r ")"
    }
    END {
      if (n_cpu != 20 || n_cuda != 20) bad = bad " " n_cpu " cpu and " n_cuda " cuda step losses (want 20)"
      if (bad != "") print "FAIL" bad
      else printf "OK 20 steps, largest relative difference %.2e%s\n", worst, (worst > 0 ? " at " at : "")
    }')
  if [[ $verdict == OK* ]]; then
    pass "$name: cuda losses agree with cpu within $rtol: ${verdict#OK }"
  else
    fail "$name: ${verdict#FAIL }"
  fi
}

for m in seqft seqlora inclora olora nlora galore gorp mtl; do
  sets=(--set run.method="$m")
  # mtl trains the union in one phase: its 20 steps are one task's max_steps
  [ "$m" != mtl ] || sets+=(--set train.max_steps=20)
  ok=1
  for b in cpu cuda; do
    timeout -k 10 120 "$GORP" run "$work/c.ini" "${sets[@]}" --set run.backend=$b --set run.out_dir="$work/$m-$b" \
      >"$work/$m-$b.log" 2>&1
    rc=$?
    if [ "$rc" -ne 0 ]; then
      fail "$m on $b: exit $rc"
      tail -5 "$work/$m-$b.log" | sed 's/^/    /'
      ok=0
    elif ! grep -q "^gorp run: .*, backend $b\b" "$work/$m-$b.log"; then
      fail "$m on $b: the run does not say it used backend $b: $(grep -m1 '^gorp run:' "$work/$m-$b.log")"
      ok=0
    fi
  done
  [ "$ok" = 0 ] || compare "$m" "$work/$m-cpu.log" "$work/$m-cuda.log"
done
finish
