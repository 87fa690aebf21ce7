#!/usr/bin/env bash
# bench_gemm_floor (bench/README.md): runs a tiny step's products, multi-head and grouped-query,
# through the backend and prints its line with the step's GFLOP count equal to the formula that
# bench_train.py's GFLOP/step column uses (computed here independently); bad arguments fail with
# exit 64 naming the argument. No timing is checked (timings belong in bench/).
. "$(dirname "$0")/lib.bash"
floor="$(dirname "$GORP")/bench_gemm_floor"

# formula: 6 * (L * (C*QD*2 + C*KD*2 + 3*C*F) + C*V) * B*T + 6 * L * B * T^2 * QD, in GFLOP
flops() { # C L H KV F V B T
  awk -v C="$1" -v L="$2" -v H="$3" -v KV="$4" -v F="$5" -v V="$6" -v B="$7" -v T="$8" 'BEGIN {
    D = C / H; QD = H * D; KD = KV * D
    printf "%.3f", (6 * (L * (C * QD * 2 + C * KD * 2 + 3 * C * F) + C * V) * B * T \
      + 6 * L * B * T * T * QD) / 1e9 }'
}

for shape in "128 4 4 4 344 512 8 256" "128 2 4 2 344 512 2 64"; do
  read -r C L H KV F V B T <<<"$shape"
  if OMP_NUM_THREADS=2 "$floor" $shape 1 >"$work/out" 2>"$work/err"; then
    line=$(cat "$work/out")
    want=$(flops $shape)
    got=$(sed -n 's/.* gflop=\([0-9.]*\).*/\1/p' "$work/out")
    [ "$got" = "$want" ] && pass "shape $shape: gflop=$got as the formula" \
      || fail "shape $shape: gflop=$got, formula $want ($line)"
    grep -Eq "best_s=[0-9.]+ mean_s=[0-9.]+" "$work/out" && pass "shape $shape: times printed" \
      || fail "shape $shape: no times in '$line'"
  else
    fail "shape $shape: exit non-zero"
    cat "$work/err"
  fi
done

expect_bad() { # NAME PATTERN ARGS...
  local name=$1 pattern=$2
  shift 2
  "$floor" "$@" >/dev/null 2>"$work/err"
  local rc=$?
  if [ "$rc" = 64 ] && grep -Eq -- "$pattern" "$work/err"; then
    pass "$name"
  else
    fail "$name: exit $rc, stderr: $(cat "$work/err")"
  fi
}
expect_bad "too few arguments" "usage: .*HIDDEN LAYERS HEADS" 128 4
expect_bad "zero layers" "argument 2 \(0\) must be a positive integer" 128 0 4 4 344 512 8 256 1
expect_bad "heads not dividing hidden" "HIDDEN must be a multiple of HEADS" 128 4 3 3 344 512 8 256 1
expect_bad "kv heads not dividing heads" "HEADS of KV_HEADS" 128 4 4 3 344 512 8 256 1
finish
