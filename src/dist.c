/* The MPI layout and its collectives (see dist.h). */
#include "gorp/dist.h"

#include "gorp/err.h"

#include <limits.h>
#include <stdlib.h>

int dist_init(dist *d, const gorp_config *c) {
  d->dp = MPI_COMM_WORLD;
  GORP_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &d->rank));
  GORP_MPI(MPI_Comm_size(MPI_COMM_WORLD, &d->size));
  const int tp = c->parallel.tp, dp = c->parallel.dp;
  if (tp != 1)
    GORP_ERR(GORP_EINPUT,
             "parallel.tp = %d: tensor parallelism is not built yet; use parallel.tp = 1 and "
             "data parallelism (parallel.dp)",
             tp);
  if (d->size != tp * dp)
    GORP_ERR(GORP_EINPUT,
             "the MPI job has %d ranks, but parallel.tp x parallel.dp = %d x %d = %d: launch "
             "%d ranks or change the config",
             d->size, tp, dp, tp * dp, tp * dp);
  const char *slurm = getenv("SLURM_NTASKS");
  if (slurm && atoi(slurm) != d->size)
    GORP_ERR(GORP_EINPUT, "SLURM_NTASKS = %s but the MPI world has %d ranks (srun/mpirun mismatch)",
             slurm, d->size);
  d->dp_rank = d->rank;
  d->dp_size = d->size;
  return GORP_OK;
}

void dist_batch_slice(const dist *d, int B, int *lo, int *hi) {
  *lo = (int)((long)B * d->dp_rank / d->dp_size);
  *hi = (int)((long)B * (d->dp_rank + 1) / d->dp_size);
}

static int sum(const dist *d, void *x, size_t n, MPI_Datatype type, size_t elem) {
  if (d->dp_size == 1) return GORP_OK;
  for (size_t off = 0; off < n;) {
    const size_t chunk = n - off < (size_t)INT_MAX ? n - off : (size_t)INT_MAX;
    GORP_MPI(MPI_Allreduce(MPI_IN_PLACE, (char *)x + off * elem, (int)chunk, type, MPI_SUM, d->dp));
    off += chunk;
  }
  return GORP_OK;
}

int dist_sum_floats(const dist *d, float *x, size_t n) {
  return sum(d, x, n, MPI_FLOAT, sizeof(float));
}

int dist_sum_doubles(const dist *d, double *x, size_t n) {
  return sum(d, x, n, MPI_DOUBLE, sizeof(double));
}

int dist_barrier(const dist *d) {
  GORP_MPI(MPI_Barrier(MPI_COMM_WORLD));
  (void)d;
  return GORP_OK;
}
