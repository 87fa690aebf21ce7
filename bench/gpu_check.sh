#!/usr/bin/env bash
# One prepared check of gorp on a GPU machine (one NVIDIA GPU, CUDA under /usr/local/cuda, no
# internet; the tree copied there without build/), in under 8 minutes: the GPU and driver
# (nvidia-smi), a fresh Release build in build-gpu/ (gorp, its CUDA module, bench_step,
# test_backend_ops, test_model_device), the backend conformance test on cuda
# (tests/unit/test_backend_ops.c), the model's step with its arrays on the GPU against the host
# model (tests/unit/test_model_device.c), the 20-step cuda-against-cpu comparison of every method (tests/cli/cuda_run.sh), and the training
# step of bench_step on run.backend = cuda and cpu at a ~1B shape and at LLaMA-2-7B's layer shapes.
# Every figure goes, with the command that produced it, to $OUT/gpu_check.txt when OUT is set (else
# build-gpu/gpu_check.txt); each stage's full output to gpu_check-<stage>.log beside it.
#   bench/gpu_check.sh
# Each stage runs under a timeout (its own limit, cut to what is left of GPU_CHECK_BUDGET_S, 450 s
# by default), so that one hang cannot take the whole budget; a failing stage is reported and the
# next one runs (those that need its result report "not run"); the script exits 1 when any stage
# failed or was skipped, 0 when all passed. Without a GPU (nvidia-smi missing or finding none) it
# says so and exits 1 at once. Needs no Python: tests/CMakeLists.txt's GORP_PYTHON is only a path
# handed to the tests, and no stage here runs one that uses it.
# Environment: OUT (the report's folder), GPU_CHECK_BUDGET_S (seconds for all stages),
# GPU_CHECK_BUILD_DIR (default build-gpu), GPU_CHECK_NO_BUILD=1 (use the binaries already in the
# build folder: a rerun on the same machine), GPU_CHECK_STEPS (timed steps per bench, default 3).
set -uo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
bdir=${GPU_CHECK_BUILD_DIR:-$src/build-gpu}
budget=${GPU_CHECK_BUDGET_S:-450}
steps=${GPU_CHECK_STEPS:-3}
outdir=${OUT:-$bdir}
mkdir -p "$outdir" || exit 1
report=$outdir/gpu_check.txt
: >"$report"
rm -f "$outdir"/gpu_check-*.log # a rerun's figures must not mix with an earlier run's
t0=$SECONDS
failed=()

say() { echo "$*" | tee -a "$report"; }
# stage NAME LIMIT_S CMD...: CMD under `timeout` (LIMIT_S, or what is left of the budget if less),
# its output in gpu_check-NAME.log; records the command, exit status and seconds in the report.
# Returns CMD's status (124: timed out; 125: no time left, not run).
stage() {
  local name=$1 limit=$2 left rc t
  shift 2
  left=$((budget - (SECONDS - t0)))
  [ "$left" -lt "$limit" ] && limit=$left
  say ""
  say "== $name"
  say "\$ $*"
  if [ "$limit" -lt 5 ]; then
    say "-> not run: the budget of $budget s is spent"
    failed+=("$name (no time left)")
    return 125
  fi
  t=$SECONDS
  timeout -k 10 "$limit" "$@" >"$outdir/gpu_check-$name.log" 2>&1
  rc=$?
  say "-> exit $rc after $((SECONDS - t)) s$([ "$rc" = 124 ] || [ "$rc" = 137 ] && echo " (timed out at $limit s)")"
  return "$rc"
}
# not_run NAME WHY: a stage skipped because one before it failed
not_run() {
  say ""
  say "== $1"
  say "-> not run: $2"
  failed+=("$1 (not run)")
}
log_of() { echo "$outdir/gpu_check-$1.log"; }

say "gorp GPU check: $(date -u +%FT%TZ), ${HOSTNAME:-?}, source $src ($(git -C "$src" rev-parse --short=12 HEAD 2>/dev/null || echo 'no git'))"
say "CPU: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p'), $(nproc) cores, $(free -g 2>/dev/null | awk '/^Mem:/ { print $2 }') GiB"

# --- the GPU -----------------------------------------------------------------------------------
if ! command -v nvidia-smi >/dev/null; then
  say "no GPU: nvidia-smi is not installed (no NVIDIA driver on this machine); nothing to check"
  exit 1
fi
if ! stage gpu 30 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader \
  || ! grep -q . "$(log_of gpu)"; then
  sed 's/^/   /' "$(log_of gpu)" | tee -a "$report"
  say "no GPU: nvidia-smi found none (above); nothing to check"
  exit 1
fi
say "GPU (name, driver, memory): $(head -1 "$(log_of gpu)")"
[ "$(wc -l <"$(log_of gpu)")" -gt 1 ] && say "   ($(wc -l <"$(log_of gpu)") GPUs; gorp uses the first)"
cuda=/usr/local/cuda
[ -x "$cuda/bin/nvcc" ] && say "CUDA toolkit: $("$cuda/bin/nvcc" --version | tail -1)"

# --- build ---------------------------------------------------------------------------------------
built=0
if [ "${GPU_CHECK_NO_BUILD:-0}" = 1 ]; then
  say ""
  say "== build: skipped (GPU_CHECK_NO_BUILD=1), using $bdir"
  [ -x "$bdir/gorp" ] && [ -x "$bdir/bench_step" ] && built=1
else
  cmake_args=(-S "$src" -B "$bdir" -DCMAKE_BUILD_TYPE=Release)
  [ -d "$cuda" ] && cmake_args+=(-DCUDAToolkit_ROOT="$cuda")
  if stage configure 90 cmake "${cmake_args[@]}"; then
    if grep -q "gorp: CUDA backend ON" "$(log_of configure)"; then
      say "cmake: gorp: CUDA backend ON"
    else
      say "cmake found no CUDA toolkit: $(grep 'gorp: CUDA backend' "$(log_of configure)")"
      failed+=("configure (no CUDA)")
    fi
    # the CUDA module is a dependency of gorp's compute layer: built with gorp
    stage build 240 cmake --build "$bdir" -j "$(nproc)" --target gorp bench_step && built=1
    [ "$built" = 1 ] || { tail -20 "$(log_of build)" | tee -a "$report"; failed+=(build); }
  else
    tail -20 "$(log_of configure)" | tee -a "$report"
    failed+=(configure)
  fi
fi
[ "$built" = 1 ] && [ -f "$bdir/libgorp_cuda.so" ] && say "built: $bdir/gorp, $bdir/libgorp_cuda.so, $bdir/bench_step"

# tests' environment, as tests/CMakeLists.txt hands it to ctest
test_env=(env GORP="$bdir/gorp" GORP_SRC="$src" GORP_DATA="${GORP_DATA:-$src/../shared/data}"
  GORP_DEBUG=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1)
# a test that exits 77 found no usable GPU: on this machine that is a failure
judge() { # judge NAME RC: the verdict line of a test stage
  case $2 in
    0) say "-> passed" ;;
    77) say "-> SKIPPED (exit 77): cuda could not be used here"; failed+=("$1 (skipped)") ;;
    125) ;;
    *) say "-> FAILED"; failed+=("$1") ;;
  esac
}

# --- the backend's conformance test on cuda, and the model's step in GPU memory -------------------
if [ "$built" = 1 ] || [ "${GPU_CHECK_NO_BUILD:-0}" = 1 ]; then
  if [ "${GPU_CHECK_NO_BUILD:-0}" = 1 ] \
    || stage build_tests 150 cmake --build "$bdir" -j "$(nproc)" --target test_backend_ops test_model_device; then
    for t in test_backend_ops test_model_device; do
      stage $t 120 "${test_env[@]}" "$bdir/tests/$t" cuda
      rc=$?
      grep -E '^(FAIL|SKIP)|passed, [0-9]+ failed|within' "$(log_of $t)" | head -40 | sed 's/^/   /' | tee -a "$report"
      judge $t "$rc"
    done
  else
    tail -20 "$(log_of build_tests)" | tee -a "$report"
    failed+=("build tests")
  fi
else
  not_run test_backend_ops "no build"
  not_run test_model_device "no build"
fi

# --- every method 20 steps, cuda against cpu -----------------------------------------------------
if [ "$built" = 1 ]; then
  stage cuda_run 150 "${test_env[@]}" bash "$src/tests/cli/cuda_run.sh"
  rc=$?
  grep -E '^(PASS|FAIL|SKIP)|^    |passed, [0-9]+ failed' "$(log_of cuda_run)" | head -60 | sed 's/^/   /' | tee -a "$report"
  judge cuda_run "$rc"
else
  not_run cuda_run "no build"
fi

# --- the training step: bench_step at a ~1B shape and at LLaMA-2-7B's layer shapes ----------------
# GORP as inputs/llama2-7b/order1.ini trains it (LoRA q, v r=8 and the rank-8 full-rank gate),
# fp32 weights, random; 4 sequences of 256 tokens per step, the last 10 carrying the loss; STEPS
# steps (the first includes the backend's start: cuBLAS's handle, the first staging buffers), then
# 2 ids decoded for 1 prompt. The 7B layer shapes are LLaMA-2-7B's (hidden 4096, MLP 11008, 32
# heads, vocabulary 32000) with 2 of its 32 layers: a whole 7B model would take minutes per cpu
# step. cuda first: it is what this machine is for.
declare -A shape=([1b]="2048 16 16 5504 32000" [7b_layers]="4096 2 32 11008 32000")
threads=$(nproc)
for size in 1b 7b_layers; do
  read -r C L H F V <<<"${shape[$size]}"
  for backend in cuda cpu; do
    name=bench_${size}_$backend
    if [ "$built" != 1 ]; then
      not_run "$name" "no build"
      continue
    fi
    stage "$name" 100 env OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" \
      OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
      "$bdir/bench_step" "$src/inputs/llama2-7b/order1.ini" 256 "$steps" 2 run.backend="$backend" \
      model.init=random model.dtype=fp32 model.hidden_size="$C" model.num_layers="$L" \
      model.num_heads="$H" model.num_kv_heads="$H" model.intermediate_size="$F" model.vocab_size="$V" \
      model.max_seq=264 train.batch_size=4 eval.batch_size=1 data.max_target_length=10 \
      gorp.svd=randomized
    rc=$?
    [ "$rc" != 125 ] || continue # no time left: reported by stage
    grep -E '^step [0-9]+ loss|^bench-step' "$(log_of "$name")" | sed 's/^/   /' | tee -a "$report"
    if [ "$rc" = 0 ] && grep -q '^bench-step rank=0' "$(log_of "$name")"; then
      say "-> $size on $backend: $(grep '^bench-step rank=0' "$(log_of "$name")" | grep -o 'mean_step_s=[^ ]* min_step_s=[^ ]* tokens_per_s=[^ ]*')"
    else
      { grep -m 3 -E 'error|Killed' "$(log_of "$name")" || tail -5 "$(log_of "$name")"; } | sed 's/^/   /' | tee -a "$report"
      say "-> FAILED"
      failed+=("$name")
    fi
  done
  # the same random model and batch: step 1's loss of both backends should agree (fp32 sums)
  l_cuda=$(sed -n 's/^step 1 loss \([^ ]*\) .*/\1/p' "$(log_of "bench_${size}_cuda")" 2>/dev/null)
  l_cpu=$(sed -n 's/^step 1 loss \([^ ]*\) .*/\1/p' "$(log_of "bench_${size}_cpu")" 2>/dev/null)
  [ -n "$l_cuda" ] && [ -n "$l_cpu" ] && say "   $size step-1 loss: cuda $l_cuda, cpu $l_cpu"
done

say ""
say "total $((SECONDS - t0)) s of the $budget s budget; report $report"
if [ ${#failed[@]} -gt 0 ]; then
  say "FAILED or not run: ${failed[*]}"
  exit 1
fi
say "all stages passed"
