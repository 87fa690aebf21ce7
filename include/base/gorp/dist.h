/* The MPI layout of a run: world = tp x dp ranks, checked at start (and against SLURM_NTASKS when
 * set) once the ranks agreed that they run one config (config_dist.h), and the collectives the
 * model, trainer, evaluator and commands use.
 * World rank = dp_rank * tp + tp_rank: a tensor-parallel (TP) group is tp consecutive ranks that
 * hold one copy of the model between them (Megatron's layout, model.h); a data-parallel (DP)
 * group is the ranks that hold the same shard. Data parallelism splits every global batch over
 * the dp groups and sums their gradients (already divided by the global count of answer tokens)
 * in one all-reduce per gradient allocation. World rank 0 prints and writes files.
 * Not for: pipeline parallelism. */
#ifndef GORP_DIST_H
#define GORP_DIST_H

#include <mpi.h>
#include <stddef.h>

typedef struct dist {
  MPI_Comm dp; /* the ranks holding the same shard (tp_rank), one per TP group */
  MPI_Comm tp; /* the ranks sharing one copy of the model */
  int rank;    /* in the world */
  int size;    /* world size */
  int dp_rank, dp_size;
  int tp_rank, tp_size;
} dist;

/* Checks the world against tp x dp (the config's parallel.tp and parallel.dp, named in the message)
 * and SLURM_NTASKS, then splits it into the tp and dp groups. Collective. */
int dist_init(dist *d, int tp, int dp);
/* Frees the communicators (before MPI_Finalize). */
void dist_free(dist *d);
/* The rows [*lo, *hi) of a global batch of B rows that this rank processes. */
void dist_batch_slice(const dist *d, int B, int *lo, int *hi);
/* In-place sums over the dp group (any length: large arrays go in chunks). */
int dist_sum_floats(const dist *d, float *x, size_t n);
int dist_sum_doubles(const dist *d, double *x, size_t n);
/* In-place sums over the tp group. */
int dist_tp_sum_floats(const dist *d, float *x, size_t n);
int dist_tp_sum_doubles(const dist *d, double *x, size_t n);
/* Waits for every rank (after rank 0 wrote a file the others read, or before exit). */
int dist_barrier(const dist *d);
/* In-place maxima over the world (d NULL or one rank: nothing to do): a flag every rank must agree
 * on, a range over the ranks. Collective. */
int dist_max_ints(const dist *d, int *x, int n);
int dist_max_doubles(const dist *d, double *x, int n);
/* all (tp_size, n) = every tp rank's n floats of mine, in tp rank order, on every rank of the
 * group. */
int dist_tp_gather_floats(const dist *d, const float *mine, size_t n, float *all);
/* The tp group's communicator, or MPI_COMM_NULL for d = NULL (one rank, no layout). */
MPI_Comm dist_tp_group(const dist *d);

/* World rank 0's bytes of buf on every rank (d NULL or one rank: nothing to do). Collective. */
int dist_bcast(const dist *d, void *buf, size_t bytes);
/* The ranks of the job (MPI_COMM_WORLD), for a command that runs without a layout. */
int dist_world_size(int *size);
/* Rank 0 of the dp group gets every dp rank's n bytes of mine, in dp rank order: *all (their sum
 * plus a zero byte) is allocated there, NULL on the other ranks, and lens (dp_size) holds each
 * rank's count there. Collective over the dp group. */
int dist_dp_gather_bytes(const dist *d, const char *mine, size_t n, char **all, int *lens);

#endif
