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

mpi_unit_test test_h5io_collective "collective model files under every layout" 120
finish
