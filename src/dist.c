/* The MPI layout and its collectives (see dist.h). */
#include "gorp/dist.h"

#include "gorp/err.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes of one rank's note on its differing config key. */
enum { DIST_WHAT = 256 };

/* For a rank whose config differs from rank 0's: "key = value (rank 0: value)" of its first
 * differing key, into out (a key rank 0 lacks shows "(rank 0: none)"). */
static void first_change(const config_change *ch, void *arg) {
  char *out = arg;
  if (out[0]) return;
  snprintf(out, DIST_WHAT, "%s = %.*s (rank 0: %.*s)", ch->key, ch->now_len, ch->now,
           ch->was ? ch->was_len : 4, ch->was ? ch->was : "none");
}

/* Every rank must run the same config: ranks launched with another --set (or another file, or
 * another run.out_dir, which deadlocked inside the collective H5Fcreate) would otherwise train
 * their shards differently or wait for each other forever. The full hash (every key, paths
 * canonical) is compared before anything else is collective. On a mismatch each rank compares its
 * text with rank 0's and names its first differing key, rank 0 gathers and lists them, and every
 * rank fails once all have printed (the first to return ends the job with MPI_Abort, as any
 * failure on one rank does, allocation failures here included). */
static int check_same_config(const gorp_config *c, int rank, int size) {
  const uint64_t mine = config_hash(c);
  uint64_t range[2] = {mine, ~mine}; /* max and ~min over the ranks */
  GORP_MPI(MPI_Allreduce(MPI_IN_PLACE, range, 2, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD));
  if (range[0] == ~range[1]) return GORP_OK;
  char *text = NULL, *own = NULL, *what = NULL;
  long len = 0;
  if (rank == 0) {
    GORP_CALL(config_to_text(c, &text));
    len = (long)strlen(text) + 1;
  }
  GORP_MPI(MPI_Bcast(&len, 1, MPI_LONG, 0, MPI_COMM_WORLD));
  if (rank != 0) GORP_ALLOC(text, len, "rank 0's config text");
  GORP_MPI(MPI_Bcast(text, (int)len, MPI_CHAR, 0, MPI_COMM_WORLD));
  GORP_CALL(config_to_text(c, &own));
  char mine_what[DIST_WHAT] = "";
  if (rank != 0 && !config_text_diff(own, text, first_change, mine_what) && strcmp(own, text))
    snprintf(mine_what, sizeof(mine_what), "a key rank 0 does not have");
  free(own);
  free(text);
  if (rank == 0) GORP_ALLOC(what, (size_t)size * DIST_WHAT, "the ranks' config differences");
  GORP_MPI(
      MPI_Gather(mine_what, DIST_WHAT, MPI_CHAR, what, DIST_WHAT, MPI_CHAR, 0, MPI_COMM_WORLD));
  if (rank == 0) {
    char list[1024] = "";
    int n = 0;
    for (int r = 1; r < size; r++) {
      const char *w = what + (size_t)r * DIST_WHAT;
      const size_t used = strlen(list);
      if (!w[0]) continue;
      n++;
      snprintf(list + used, sizeof(list) - used, "\n  rank %d: %.*s", r, DIST_WHAT, w);
    }
    free(what);
    gorp_error(__FILE__, __LINE__, __func__, GORP_EINPUT,
               "the ranks run different configs (every rank must get the same config file and "
               "--set options): %d of %d rank(s) differ from rank 0, each shown with its first "
               "differing key:%s",
               n, size, list);
  } else {
    gorp_error(__FILE__, __LINE__, __func__, GORP_EINPUT,
               "rank %d %s%s (rank 0 lists every rank that differs)", rank,
               mine_what[0] ? "runs another config than rank 0: "
                            : "runs rank 0's config, another rank does not",
               mine_what);
  }
  GORP_MPI(MPI_Barrier(MPI_COMM_WORLD));
  return GORP_EINPUT;
}

int dist_init(dist *d, const gorp_config *c) {
  GORP_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &d->rank));
  GORP_MPI(MPI_Comm_size(MPI_COMM_WORLD, &d->size));
  if (d->size > 1) GORP_CALL(check_same_config(c, d->rank, d->size));
  const int tp = c->parallel.tp, dp = c->parallel.dp;
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
