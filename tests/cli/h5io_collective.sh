#!/usr/bin/env bash
# Collective model files under mpirun with p = 1, 2, 3, 4 ranks: the MPI part of
# tests/unit/test_h5io_collective.c (every TP x DP layout writes the one-process file byte for
# byte and loads every other layout's file bit-exactly; shards concatenated in a 1-D dataset; a
# damaged shard or replicated tensor refused by every rank). p = 3 cuts every split axis in
# thirds. Leak checking is off because Open MPI leaks by design (TOOLCHAIN.md). Each run has a
# timeout, so a rank left waiting fails instead of blocking the suite.
# Env: GORP (the gorp binary; the test binary is found in $(dirname "$GORP")/tests) or
# GORP_TEST_BIN_DIR (the folder holding test_h5io_collective).
. "$(dirname "$0")/lib.bash"

bin="${GORP_TEST_BIN_DIR:-$(dirname "$GORP")/tests}/test_h5io_collective"
export OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"

if [ ! -x "$bin" ]; then
  fail "no test binary at $bin (build the test_h5io_collective target, or set GORP_TEST_BIN_DIR)"
elif ! command -v mpirun >/dev/null; then
  fail "mpirun is not on PATH"
else
  for p in 1 2 3 4; do
    log="$work/p$p.log"
    TMPDIR="$work" timeout -k 10 120 mpirun --allow-run-as-root --oversubscribe -np "$p" "$bin" \
      >"$log" 2>&1
    rc=$?
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
      fail "p=$p: no result within 120 s (a rank left waiting?)"
      tail -20 "$log" | sed 's/^/    /'
    elif [ "$rc" -eq 0 ] && [[ "$summary" =~ ^[1-9][0-9]*\ passed,\ 0\ failed$ ]]; then
      pass "p=$p: collective model files under every layout ($summary)"
    else
      fail "p=$p: exit $rc, ${summary:-no summary line}"
      { grep -E '^FAIL' "$log" || tail -20 "$log"; } | sed 's/^/    /'
    fi
  done
fi
finish
