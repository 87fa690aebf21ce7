#!/usr/bin/env bash
# The distributed top-k SVD (linalg_dist.h) under mpirun with p = 1, 2, 3, 4 ranks: the MPI part
# of tests/unit/test_linalg_dist.c (ScaLAPACK and randomized against LAPACK on the real GORP
# shapes sharded by rows and by columns, uneven and empty shards, TP sub-communicators, errors
# refused on every rank). p = 3 makes every split uneven. Leak checking is off for these runs
# because Open MPI leaks by design (TOOLCHAIN.md); the plain unit run keeps it for the MPI-free
# part. Each run has a timeout, so a hang fails instead of blocking the suite.
# Env: GORP (the gorp binary; the test binary is found in $(dirname "$GORP")/tests) or
# GORP_TEST_BIN_DIR (the folder holding test_linalg_dist).
. "$(dirname "$0")/lib.bash"

bin="${GORP_TEST_BIN_DIR:-$(dirname "$GORP")/tests}/test_linalg_dist"
export OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"

if [ ! -x "$bin" ]; then
  fail "no test binary at $bin (build the test_linalg_dist target, or set GORP_TEST_BIN_DIR)"
elif ! command -v mpirun >/dev/null; then
  fail "mpirun is not on PATH"
else
  for p in 1 2 3 4; do
    log="$work/p$p.log"
    timeout -k 10 300 mpirun --allow-run-as-root --oversubscribe -np "$p" "$bin" >"$log" 2>&1
    rc=$?
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
      fail "p=$p: no result within 300 s (a hang?)"
      tail -20 "$log" | sed 's/^/    /'
    elif [ "$rc" -eq 0 ] && [[ "$summary" =~ ^[1-9][0-9]*\ passed,\ 0\ failed$ ]]; then
      pass "p=$p: distributed SVD checks ($summary)"
    else
      fail "p=$p: exit $rc, ${summary:-no summary line}"
      { grep -E '^FAIL' "$log" || tail -20 "$log"; } | sed 's/^/    /'
    fi
  done
fi
finish
