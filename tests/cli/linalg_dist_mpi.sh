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

mpi_unit_test test_linalg_dist "distributed SVD checks" 300
finish
