/* Every rank of an MPI job must run the same config: ranks launched with another --set (or another
 * file, or another run.out_dir, which deadlocked inside the collective H5Fcreate) would otherwise
 * train their shards differently or wait for each other forever.
 * Not for: the MPI layout itself (dist.h), which the commands set up right after this check. */
#ifndef GORP_CONFIG_DIST_H
#define GORP_CONFIG_DIST_H

#include "gorp/config.h"

/* Compares the full config_hash over MPI_COMM_WORLD; on a mismatch every rank fails with
 * GORP_EINPUT, rank 0 naming each differing rank and its first differing key. Collective: the first
 * collective call of every MPI command that reads a config, before dist_init. */
int config_check_same_on_ranks(const gorp_config *c);

#endif
