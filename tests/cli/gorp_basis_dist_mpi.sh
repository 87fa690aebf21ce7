#!/usr/bin/env bash
# GORP's shared basis on a sharded matrix (gorp_basis_dist.h) under mpirun with p = 1, 2, 3, 4
# ranks: the MPI part of tests/unit/test_gorp_basis_dist.c (two successive extensions and the
# projection, sharded by rows and by columns, against gorp_basis.h on the gathered matrix; zero
# moment, energy 0, r == cap, the cap midway, energy 1 on a rank-3 moment; empty and lopsided
# shards). p = 3 makes every split uneven, p = 4 leaves a rank without any of 3 columns. Leak
# checking is off for these runs because Open MPI leaks by design (TOOLCHAIN.md); the plain unit
# run keeps it for the MPI-free part. Each run has a timeout, so a hang (ranks disagreeing on a
# collective) fails instead of blocking the suite.
# Env: GORP (the gorp binary; the test binary is found in $(dirname "$GORP")/tests) or
# GORP_TEST_BIN_DIR (the folder holding test_gorp_basis_dist).
. "$(dirname "$0")/lib.bash"

bin="${GORP_TEST_BIN_DIR:-$(dirname "$GORP")/tests}/test_gorp_basis_dist"
export OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"

if [ ! -x "$bin" ]; then
  fail "no test binary at $bin (build the test_gorp_basis_dist target, or set GORP_TEST_BIN_DIR)"
elif ! command -v mpirun >/dev/null; then
  fail "mpirun is not on PATH"
else
  for p in 1 2 3 4; do
    log="$work/p$p.log"
    timeout -k 10 120 mpirun --allow-run-as-root --oversubscribe -np "$p" "$bin" >"$log" 2>&1
    rc=$?
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
      fail "p=$p: no result within 120 s (a hang?)"
      tail -20 "$log" | sed 's/^/    /'
    elif [ "$rc" -eq 0 ] && [[ "$summary" =~ ^[1-9][0-9]*\ passed,\ 0\ failed$ ]]; then
      pass "p=$p: distributed GORP basis checks ($summary)"
    else
      fail "p=$p: exit $rc, ${summary:-no summary line}"
      { grep -E '^FAIL' "$log" || tail -20 "$log"; } | sed 's/^/    /'
    fi
  done
fi
finish
