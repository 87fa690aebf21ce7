#!/usr/bin/env bash
# Training step with bf16 weights against fp32 weights (issue 17), gorp only: bench_step
# (bench/bench_step.c) on the LLaMA shapes of bench_train.py (small 512/6/8/1376/4096, medium
# 768/12/12/2048/8192) and a ~1B one (2048/16/16/5504/32000), random weights, GORP as
# inputs/llama2-7b/order1.ini trains it (LoRA q, v r=8, rank-8 full-rank gate; paper axis),
# train.batch_size x SEQ tokens, model.dtype fp32 and bf16 alternating round by round so that both
# meet the same load. Prints per size and dtype the mean of the rounds' mean step seconds, tokens/s,
# and bf16's speed-up; the CPU model and the ISA oneDNN reports (ONEDNN_VERBOSE=1 shows it too).
#   bench/bench_bf16_step.sh [SIZES] [ROUNDS] [STEPS] [BATCH] [SEQ]
#   e.g. OMP_NUM_THREADS=2 bench/bench_bf16_step.sh small,medium 2 3 4 256
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
sizes=${1:-small,medium,1b} rounds=${2:-2} steps=${3:-3} batch=${4:-4} seq=${5:-256}
declare -A shape=([small]="512 6 8 1376 4096" [medium]="768 12 12 2048 8192"
  [1b]="2048 16 16 5504 32000")
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc --all) cores, OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset}; bf16 ISA flags: $(grep -o -w 'avx512_bf16\|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "| size | fp32 step s | bf16 step s | fp32 tok/s | bf16 tok/s | bf16 speed-up |"
echo "|---|---|---|---|---|---|"
for size in ${sizes//,/ }; do
  read -r C L H F V <<<"${shape[$size]}"
  declare -A sum=([fp32]=0 [bf16]=0)
  for r in $(seq "$rounds"); do
    for dt in fp32 bf16; do
      line=$("$src/build/bench_step" "$src/inputs/llama2-7b/order1.ini" "$seq" "$steps" 2 \
        model.init=random model.dtype=$dt model.hidden_size=$C model.num_layers=$L \
        model.num_heads=$H model.intermediate_size=$F model.vocab_size=$V model.max_seq=$((seq + 8)) \
        train.batch_size="$batch" gorp.svd=randomized eval.batch_size=1 data.max_target_length=10 \
        "data.root=$src/../shared/data/CL_Benchmark/full" | grep '^bench-step rank=0')
      s=$(sed 's/.*mean_step_s=\([0-9.]*\).*/\1/' <<<"$line")
      sum[$dt]=$(echo "${sum[$dt]} + $s" | bc -l)
      echo "  $size round $r $dt: $line" >&2
    done
  done
  f=$(echo "${sum[fp32]} / $rounds" | bc -l) b=$(echo "${sum[bf16]} / $rounds" | bc -l)
  tok=$((batch * seq))
  printf "| %s | %.3f | %.3f | %.0f | %.0f | %.2fx |\n" "$size" "$f" "$b" "$(echo "$tok / $f" | bc -l)" \
    "$(echo "$tok / $b" | bc -l)" "$(echo "$f / $b" | bc -l)"
done
