/* The MPI layout and its collectives (see dist.h). */
#include "gorp/dist.h"

#include "gorp/err.h"

#include <limits.h>
#include <stdlib.h>

int dist_init(dist *d, int tp, int dp) {
  GORP_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &d->rank));
  GORP_MPI(MPI_Comm_size(MPI_COMM_WORLD, &d->size));
  if (d->size != tp * dp)
    GORP_ERR(GORP_EINPUT,
             "the MPI job has %d ranks, but parallel.tp x parallel.dp = %d x %d = %d: launch "
             "%d ranks or change the config",
             d->size, tp, dp, tp * dp, tp * dp);
  const char *slurm = getenv("SLURM_NTASKS");
  if (slurm && atoi(slurm) != d->size)
    GORP_ERR(GORP_EINPUT, "SLURM_NTASKS = %s but the MPI world has %d ranks (srun/mpirun mismatch)",
             slurm, d->size);
  /* a TP group is tp consecutive ranks: one node's ranks when tp divides the ranks per node, so
   * the per-layer all-reduces stay inside the node (Megatron's ordering) */
  d->tp_rank = d->rank % tp;
  d->tp_size = tp;
  d->dp_rank = d->rank / tp;
  d->dp_size = dp;
  GORP_MPI(MPI_Comm_split(MPI_COMM_WORLD, d->dp_rank, d->tp_rank, &d->tp));
  GORP_MPI(MPI_Comm_split(MPI_COMM_WORLD, d->tp_rank, d->dp_rank, &d->dp));
  return GORP_OK;
}

void dist_free(dist *d) {
  if (d->tp != MPI_COMM_NULL) MPI_Comm_free(&d->tp);
  if (d->dp != MPI_COMM_NULL) MPI_Comm_free(&d->dp);
}

void dist_batch_slice(const dist *d, int B, int *lo, int *hi) {
  *lo = (int)((long)B * d->dp_rank / d->dp_size);
  *hi = (int)((long)B * (d->dp_rank + 1) / d->dp_size);
}

static int sum(MPI_Comm comm, int size, void *x, size_t n, MPI_Datatype type, size_t elem) {
  if (size == 1) return GORP_OK;
  for (size_t off = 0; off < n;) {
    const size_t chunk = n - off < (size_t)INT_MAX ? n - off : (size_t)INT_MAX;
    GORP_MPI(MPI_Allreduce(MPI_IN_PLACE, (char *)x + off * elem, (int)chunk, type, MPI_SUM, comm));
    off += chunk;
  }
  return GORP_OK;
}

int dist_sum_floats(const dist *d, float *x, size_t n) {
  return sum(d->dp, d->dp_size, x, n, MPI_FLOAT, sizeof(float));
}

int dist_sum_doubles(const dist *d, double *x, size_t n) {
  return sum(d->dp, d->dp_size, x, n, MPI_DOUBLE, sizeof(double));
}

int dist_tp_sum_floats(const dist *d, float *x, size_t n) {
  return sum(d->tp, d->tp_size, x, n, MPI_FLOAT, sizeof(float));
}

int dist_tp_sum_doubles(const dist *d, double *x, size_t n) {
  return sum(d->tp, d->tp_size, x, n, MPI_DOUBLE, sizeof(double));
}

int dist_barrier(const dist *d) {
  GORP_MPI(MPI_Barrier(MPI_COMM_WORLD));
  (void)d;
  return GORP_OK;
}

int dist_bcast(const dist *d, void *buf, size_t bytes) {
  if (!d || d->size == 1) return GORP_OK;
  if (bytes > INT_MAX) GORP_ERR(GORP_ELIB, "dist_bcast: %zu bytes in one broadcast", bytes);
  GORP_MPI(MPI_Bcast(buf, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD));
  return GORP_OK;
}

static int world_max(const dist *d, void *x, int n, MPI_Datatype type) {
  if (d && d->size > 1) GORP_MPI(MPI_Allreduce(MPI_IN_PLACE, x, n, type, MPI_MAX, MPI_COMM_WORLD));
  return GORP_OK;
}

int dist_max_ints(const dist *d, int *x, int n) {
  return world_max(d, x, n, MPI_INT);
}

int dist_max_doubles(const dist *d, double *x, int n) {
  return world_max(d, x, n, MPI_DOUBLE);
}

int dist_tp_gather_floats(const dist *d, const float *mine, size_t n, float *all) {
  GORP_CHECK(n <= (size_t)INT_MAX, GORP_EINPUT,
             "dist: %zu floats per rank to gather over the tp group (at most %d)", n, INT_MAX);
  GORP_MPI(MPI_Allgather(mine, (int)n, MPI_FLOAT, all, (int)n, MPI_FLOAT, d->tp));
  return GORP_OK;
}

MPI_Comm dist_tp_group(const dist *d) {
  return d ? d->tp : MPI_COMM_NULL;
}

int dist_world_size(int *size) {
  GORP_MPI(MPI_Comm_size(MPI_COMM_WORLD, size));
  return GORP_OK;
}

int dist_dp_gather_bytes(const dist *d, const char *mine, size_t n, char **all, int *lens) {
  GORP_CHECK(n <= (size_t)INT_MAX, GORP_EINPUT,
             "dist: %zu bytes on one rank to gather over the dp group (at most %d)", n, INT_MAX);
  const int len = (int)n;
  *all = NULL;
  GORP_MPI(MPI_Gather(&len, 1, MPI_INT, lens, 1, MPI_INT, 0, d->dp));
  int *offs = NULL;
  size_t total = 0;
  if (d->dp_rank == 0) {
    GORP_ALLOC(offs, d->dp_size, "gather offsets");
    for (int r = 0; r < d->dp_size; r++) {
      offs[r] = (int)total;
      total += (size_t)lens[r];
    }
    if (total > (size_t)INT_MAX) {
      free(offs);
      GORP_ERR(GORP_EINPUT, "dist: %zu bytes to gather on one rank (at most %d)", total, INT_MAX);
    }
    *all = calloc(total + 1, 1);
    if (!*all) {
      free(offs);
      GORP_ERR(GORP_EMEM, "out of memory allocating %zu bytes for the gathered text", total + 1);
    }
  }
  const int rc = MPI_Gatherv(mine, len, MPI_CHAR, *all, lens, offs, MPI_CHAR, 0, d->dp);
  free(offs);
  GORP_CHECK(rc == MPI_SUCCESS, GORP_ELIB, "MPI call failed (code %d): MPI_Gatherv", rc);
  return GORP_OK;
}
