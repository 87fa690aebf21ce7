#!/usr/bin/env bash
# Top-k SVD time on GORP's shapes: LAPACK vs ScaLAPACK (p = 1, 2) vs randomized (local and
# distributed), median of REPS calls, printed as a Markdown table (for BENCHMARKS.md).
#   bench/bench_svd.sh [REPS] [SQUARE]     (defaults: 3 repetitions, a 4096 x 4096 square)
# Builds bench/bench_svd.c (CMake target bench_svd in build/), then runs
#   1 rank, 1 OpenBLAS thread: every method (ScaLAPACK and distributed randomized on a 1 x 1 grid)
#   1 rank, 2 OpenBLAS threads: LAPACK and local randomized (what one process gets from 2 cores)
#   2 ranks, 1 thread each: ScaLAPACK and distributed randomized, rows split and columns split
# Shapes: 11008 x 8 and 4096 x 8 (k = 4: LLaMA-2-7B MLP and attention dimensions times a rank-8
# side), 8 x 4096 (k = 4) and SQUARE x SQUARE (k = 8). Right singular vectors are timed.
# Not for: correctness (tests/cli/linalg_dist_mpi.sh), or a machine with other heavy jobs running
# (the table is only as quiet as the machine: the script prints the load average).
set -euo pipefail
reps=${1:-3}
square=${2:-4096}
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# built by CMake with gorp (the same flags and library); a stale binary is rebuilt first
cmake --build "$root/build" --target bench_svd >/dev/null
exe=$root/build/bench_svd

shapes=(11008x8x4 4096x8x4 8x4096x4 "${square}x${square}x8")
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores" >&2
{
  OPENBLAS_NUM_THREADS=1 mpirun -np 1 "$exe" "$reps" all "${shapes[@]}" |
    sed 's/$/ thr=1/'
  OPENBLAS_NUM_THREADS=2 mpirun -np 1 "$exe" "$reps" local "${shapes[@]}" |
    sed 's/$/ thr=2/'
  OPENBLAS_NUM_THREADS=1 mpirun --oversubscribe -np 2 "$exe" "$reps" all "${shapes[@]}" |
    sed 's/$/ thr=1/'
} >"$tmp/results.txt"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

awk -v reps="$reps" '
function fmt(s) {
  if (s == "") return "-"
  if (s < 1) return sprintf("%.3g ms", s * 1000)
  return sprintf("%.3g s", s)
}
/^RESULT/ {
  shape = $2; method = $4; p = substr($5, 3); layout = $6; thr = substr($9, 5)
  split($7, a, "="); t = a[2]
  key = shape SUBSEP method SUBSEP p SUBSEP layout SUBSEP thr
  time[key] = t
  if (!(shape in seen)) { seen[shape] = 1; order[++n] = shape; kk[shape] = $3 }
}
END {
  printf "| shape (k) | method | 1 core | 2 cores: 2 ranks, rows split"
  printf " (LAPACK/local: 2 threads) | 2 cores: 2 ranks, columns split |\n"
  printf "|---|---|---|---|---|\n"
  for (i = 1; i <= n; i++) {
    s = order[i]; k = kk[s]; sub(/k=/, "", k)
    label = s " (k=" k ")"
    printf "| %s | LAPACK sgesvd (linalg, 1 rank) | %s | %s | - |\n", label,
      fmt(time[s, "lapack", 1, "whole", 1]), fmt(time[s, "lapack", 1, "whole", 2])
    printf "| | ScaLAPACK psgesvd (linalg_dist) | %s | %s | %s |\n",
      fmt(time[s, "scalapack", 1, "rows", 1]), fmt(time[s, "scalapack", 2, "rows", 1]),
      fmt(time[s, "scalapack", 2, "cols", 1])
    printf "| | randomized (linalg, 1 rank) | %s | %s | - |\n",
      fmt(time[s, "randomized-local", 1, "whole", 1]),
      fmt(time[s, "randomized-local", 1, "whole", 2])
    printf "| | randomized (linalg_dist) | %s | %s | %s |\n",
      fmt(time[s, "randomized-dist", 1, "rows", 1]), fmt(time[s, "randomized-dist", 2, "rows", 1]),
      fmt(time[s, "randomized-dist", 2, "cols", 1])
  }
  printf "\nMedian of %d calls (one untimed call first), right singular vectors, float32;", reps
  printf " randomized: oversample 8, 2 power iterations.\n"
}' "$tmp/results.txt"
