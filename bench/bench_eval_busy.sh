#!/usr/bin/env bash
# Evaluation speed of the real model on 1 and 2 OpenMP threads, without and beside a busy process
# (`yes > /dev/null`: one core's worth of other work), at eval.batch_size 1 and 16, for one or
# more gorp builds run back to back per setting (so that they meet the same load on a shared
# machine): the case of decoding paying for thread wake-ups (BENCHMARKS.md). Each run is a
# `gorp run` of one task of the real benchmark with a one-example training step; its two
# evaluation rows (zero-shot and after the task) decode N prompts each. Prints one Markdown row
# per setting and build: prompts over the seconds from each row's start to its "exact match" line.
#
#   bench/bench_eval_busy.sh MODEL.h5 TOKENIZER.json N_PROMPTS TASK GORP [GORP...]
set -u
model=$1 tok=$2 n=$3 task=$4
shift 4
here=$(cd "$(dirname "$0")/.." && pwd)
data="$here/../shared/data/CL_Benchmark"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/run.ini" <<INI
[run]
checkpoint_every = 0
[model]
init = $model
[data]
root = $data/full
instructions = $data/instruction_config.json
tokenizer = $tok
chat_template = none
tasks = $task
max_source_length = 128
max_target_length = 16
max_train_per_task = 1
max_test_per_task = $n
[train]
batch_size = 1
max_steps = 1
[eval]
max_new_tokens = 8
INI
echo "| build | eval.batch_size | OMP threads | other load | prompts | evaluation s | prompts/s |"
echo "|---|---:|---:|---|---:|---:|---:|"
for busy in no yes; do
  for bs in 1 16; do
    for th in 1 2; do
      for gorp in "$@"; do
        pid=""
        if [ $busy = yes ]; then
          yes >/dev/null &
          pid=$!
        fi
        rm -rf "$work/out"
        # each line stamped with the time it was printed ($EPOCHREALTIME: no process per line)
        OMP_NUM_THREADS=$th OPENBLAS_NUM_THREADS=$th stdbuf -oL "$gorp" run "$work/run.ini" \
          --set run.out_dir="$work/out" --set eval.batch_size=$bs 2>&1 |
          while IFS= read -r line; do echo "$EPOCHREALTIME $line"; done >"$work/log"
        rc=${PIPESTATUS[0]}
        [ -n "$pid" ] && kill "$pid"
        # an evaluation cell lasts from the last line before it that is not a progress line to
        # its "exact match" line
        awk -v g="$gorp" -v bs=$bs -v th=$th -v busy=$busy -v rc=$rc '
          / exact match / { s += $1 - t0; p += substr($0, index($0, "/") + 1) + 0; next }
          !/ prompts, / { t0 = $1 }
          END { load = busy == "yes" ? "yes > /dev/null" : "-"
                if (rc || !p) printf "| %s | %d | %d | %s | run failed (rc %d) | | |\n", g, bs, th, load, rc
                else printf "| %s | %d | %d | %s | %d | %.1f | %.2f |\n", g, bs, th, load, p, s, p / s }' "$work/log"
      done
    done
  done
done
