#!/usr/bin/env bash
# A LLaMA-2-7B-shaped GORP step on this machine (issue 17): the real 7B dimensions
# (inputs/llama2-7b/config.json, which gorp plan and bench_step read with --hf-config), random
# weights held in bf16 (model.dtype = bf16), the authors' targets (inputs/llama2-7b/order1.ini:
# LoRA q, v r=8 and the rank-8 full-rank gate with GORP's bases), train.recompute,
# full.stream_grad, gorp.svd = randomized; one sequence of SEQ tokens per step, then EVAL prompts
# decoded together for 8 ids. bench_step (bench/bench_step.c) runs it on NP ranks (tp = NP) and
# prints each rank's peak resident memory, which is set beside `gorp plan`'s total per rank for
# the same config.
#   bench/bench_7b_step.sh [NP] [STEPS] [SEQ] [EVAL] [-- extra section.key=value ...]
#   e.g. bench/bench_7b_step.sh 2 2 256 2
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
np=${1:-2} steps=${2:-2} seq=${3:-256} evalb=${4:-2}
shift $(($# < 4 ? $# : 4))
[ "${1:-}" = -- ] && shift
cfg=$src/inputs/llama2-7b/order1.ini
sets=(model.init=random model.dtype=bf16 train.recompute=true full.stream_grad=true
  gorp.svd=randomized train.batch_size=1 eval.batch_size="$evalb" parallel.tp="$np"
  data.max_target_length=10 "data.root=$src/../shared/data/CL_Benchmark/full" "$@")
hf=$src/inputs/llama2-7b/config.json
plan_sets=()
for s in "${sets[@]}"; do plan_sets+=(--set "$s"); done
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc --all) cores, OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset}, $(free -g | awk '/Mem:/{print $2}') GiB"
"$src/build/gorp" plan "$cfg" --hf-config "$hf" "${plan_sets[@]}" --seq "$seq" | grep -E "^(weights|gradients|lora|optimizer|bases|activations|workspace|total per rank) "
/usr/bin/time -f "wall %e s" mpirun --allow-run-as-root --oversubscribe -np "$np" \
  "$src/build/bench_step" "$cfg" "$seq" "$steps" 8 --hf-config "$hf" "${sets[@]}"
