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

mpi_unit_test test_gorp_basis_dist "distributed GORP basis checks" 120
finish
