#!/usr/bin/env bash
# Checkpoint size and save time, lean against full (issue 17, docs/CHECKPOINT.md "Lean
# checkpoints"), on a real model file, printed as a Markdown table (for BENCHMARKS.md).
#   bench/bench_ckpt.sh [MODEL.h5] [REPS]   (defaults: build/models/smollm2-135m.h5, 5)
# For gorp with the authors' targets (LoRA q, v r = 8, rank-8 gate) and inclora (LoRA q, v r = 8),
# bench_ckpt (bench/bench_ckpt.c, a CMake target beside gorp) loads the model, prepares a
# mid-task position and saves it with gorp's own checkpoint code REPS times lean and REPS times
# full (what every save wrote before), alternating; one rank, 1 thread, into a temporary folder
# on the disk of /tmp (fsync included). Not for: parallel file systems, correctness
# (tests/cli/lean_checkpoint.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
model=$(realpath "${1:-$root/build/models/smollm2-135m.h5}")
reps=${2:-5}
data=${GORP_DATA:-$root/../shared/data}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --build "$root/build" --target bench_ckpt >/dev/null
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores" >&2
echo "| method | trainable | lean bytes | full bytes | lean save s (best / median) | full save s (best / median) |"
echo "|---|---|---:|---:|---:|---:|"
for method in gorp inclora; do
  full_targets=gate
  [ $method = inclora ] && full_targets=none
  cat >"$tmp/$method.ini" <<INI
[run]
out_dir = $tmp/out-$method
method = $method
checkpoint_keep = 2
[model]
init = $model
[data]
root = $data/CL_Benchmark/mini
instructions = $data/CL_Benchmark/instruction_config.json
tasks = SST-2, CB
[lora]
targets = q, v
r = 8
[full]
targets = $full_targets
rank = 8
INI
  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$root/build/bench_ckpt" "$tmp/$method.ini" "$reps" \
    >"$tmp/$method.txt"
  rm -rf "$tmp/out-$method"
  "${GORP_PYTHON:-python3}" - "$tmp/$method.txt" "$method" "$full_targets" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    kind, *kv = line.split()
    rows[kind] = dict(x.split("=") for x in kv)
l, f = rows["lean"], rows["full"]
what = "LoRA q, v" + (" + gate (full-rank targets)" if sys.argv[3] != "none" else "")
print(f"| {sys.argv[2]} | {what} | {int(l['bytes']):,} | {int(f['bytes']):,} | "
      f"{l['best_s']} / {l['median_s']} | {f['best_s']} / {f['median_s']} |")
PY
done
