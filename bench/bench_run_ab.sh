#!/usr/bin/env bash
# Two gorp builds (or one build with two settings) on the same short real-model run, alternating
# A, B, A, B so that both meet the same load: SmolLM2-135M-Instruct (scripts/get_model.sh
# smollm2-135m), inputs/smollm2/seqlora.ini cut to one task (dbpedia), 2 training steps of 8
# examples and 12 test prompts evaluated twice (zero-shot and after the task). Prints per round the
# user CPU seconds (the work done, less sensitive to a shared machine than the wall time), the
# wall seconds and the peak resident memory, and checks that both print the same losses and
# accuracies (the same computation).
# Not for: the training step alone on random models (bench_train.py, bench_ab.py).
#
#   bench/bench_run_ab.sh A_GORP B_GORP [ROUNDS] [-- B's extra --set options]
#   e.g. bench/bench_run_ab.sh /old/build/gorp build/gorp 2
#        bench/bench_run_ab.sh build/gorp build/gorp 1 -- --set train.recompute=true
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
a=$(realpath "$1") b=$(realpath "$2") rounds=${3:-2}
shift $(($# < 3 ? $# : 3))
[ "${1:-}" = -- ] && shift
models=$src/build/models
[ -f "$models/smollm2-135m.h5" ] || { echo "run scripts/get_model.sh smollm2-135m first" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sets=(--set data.tasks=dbpedia --set data.order= --set data.substitute= --set run.log_every=1
  --set data.max_train_per_task=16 --set data.max_test_per_task=12
  --set "model.init=$models/smollm2-135m.h5" --set "data.tokenizer=$models/smollm2-135m.tokenizer.json")
numbers() { grep -E "step +[0-9]+/|exact match" "$1" | sed 's/ *[0-9]* tok\/s.*//'; }
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset}"
for r in $(seq "$rounds"); do
  for which in A B; do
    bin=$a extra=()
    [ $which = B ] && bin=$b extra=("$@")
    /usr/bin/time -f "%U %e %M" -o "$work/time" "$bin" run "$src/inputs/smollm2/seqlora.ini" \
      --set "run.out_dir=$work/run$which$r" "${sets[@]}" "${extra[@]}" >"$work/$which$r.log" 2>&1
    read -r user wall rss <"$work/time"
    printf "round %d %s: user %6.1f s  wall %6.1f s  peak RSS %5.0f MB\n" "$r" $which "$user" "$wall" \
      "$(echo "$rss / 1024" | bc -l)"
  done
  diff <(numbers "$work/A$r.log") <(numbers "$work/B$r.log") >/dev/null &&
    echo "round $r: the same losses and accuracies" || { echo "round $r: A and B DIFFER"; exit 1; }
done
