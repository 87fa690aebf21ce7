/* The MPI layout of a run: world = tp x dp ranks, checked at start against the config (and
 * SLURM_NTASKS when set), and the collectives the trainer and evaluator use. Data parallelism
 * splits every global batch over the dp ranks and sums their gradients (already divided by the
 * global count of answer tokens) in one all-reduce per gradient allocation; everything else is
 * replicated and computed identically on every rank. Rank 0 prints and writes files.
 * Not for: tensor parallelism (parallel.tp > 1 is refused until it is built). */
#ifndef GORP_DIST_H
#define GORP_DIST_H

#include "gorp/config.h"

#include <mpi.h>
#include <stddef.h>

typedef struct dist {
  MPI_Comm dp; /* the data-parallel group (the whole world while tp = 1) */
  int rank;    /* in the world */
  int size;    /* world size */
  int dp_rank, dp_size;
} dist;

/* Checks the world against parallel.tp x parallel.dp (and SLURM_NTASKS), naming the keys. */
int dist_init(dist *d, const gorp_config *c);
/* The rows [*lo, *hi) of a global batch of B rows that this rank processes. */
void dist_batch_slice(const dist *d, int B, int *lo, int *hi);
/* In-place sums over the dp group (any length: large arrays go in chunks). */
int dist_sum_floats(const dist *d, float *x, size_t n);
int dist_sum_doubles(const dist *d, double *x, size_t n);
/* Waits for every rank (after rank 0 wrote a file the others read, or before exit). */
int dist_barrier(const dist *d);

#endif
