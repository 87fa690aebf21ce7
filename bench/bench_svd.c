/* Top-k SVD timings on GORP's shapes: LAPACK (linalg_topk_right SVD_EXACT), ScaLAPACK
 * (linalg_dist_topk_right SVD_EXACT) and the randomized SVD (local linalg and distributed), run
 * under mpirun with P ranks. CMake builds it beside gorp (build/bench_svd, with the unit tests'
 * helpers); bench/bench_svd.sh runs P = 1 and 2 and prints the Markdown table; by hand:
 *   OPENBLAS_NUM_THREADS=1 mpirun -np P build/bench_svd REPS MODE MxNxK...
 * MODE: all (every method; the local ones only when P = 1) or local (only the local ones).
 * Prints one line per measurement:
 *   RESULT <M>x<N> k=<K> <method> p=<P> <layout> median_s=<..> min_s=<..>
 * One untimed call first; then REPS timed calls, each between barriers, the time of a call being
 * the slowest rank's (MPI_Wtime). The matrix is Gaussian with columns scaled by 0.9^j (a decaying
 * spectrum; the content barely changes the time of an exact SVD). Right vectors (Q (k, n)) are
 * timed: that is what GORP's projections use.
 * Not for: correctness (tests/unit/test_linalg_dist.c), or anything gorp itself runs. */
#include "gorp/backend.h"
#include "gorp/linalg.h"
#include "gorp/linalg_dist.h"
#include "gorp/rng.h"
#include "testutil.h" /* xcalloc, dist_shard_copy */

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rank, nprocs;

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

typedef struct job {
  const float *G; /* whole matrix (local methods) */
  const float *Gs;
  dist_matrix d;
  int k;
  svd_kind kind;
  int dist; /* 1: linalg_dist_topk_right, 0: linalg_topk_right on rank 0 */
  svd_opts o;
  linalg_ws *lw;
  linalg_dist_ws *dw;
  float *Q, *sv;
} job;

static int run_once(job *j) {
  if (j->dist)
    return linalg_dist_topk_right(j->Q, j->sv, j->Gs, &j->d, j->k, j->kind, &j->o, j->dw);
  if (rank != 0) return 0;
  return linalg_topk_right(j->Q, j->sv, j->G, j->d.m, j->d.n, j->k, j->kind, &j->o, j->lw);
}

static void time_job(job *j, int reps, const char *method, const char *layout) {
  double *t = xcalloc(reps, sizeof(double));
  int rc = run_once(j); /* warm-up: first-touch, BLACS/psgesvd set-up */
  for (int r = 0; r < reps && !rc; r++) {
    MPI_Barrier(MPI_COMM_WORLD);
    const double t0 = MPI_Wtime();
    rc = run_once(j);
    double mine = MPI_Wtime() - t0;
    MPI_Allreduce(&mine, &t[r], 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  }
  if (rc) {
    fprintf(stderr, "bench_svd: %s failed\n", method);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  qsort(t, reps, sizeof(double), cmp_double);
  if (rank == 0)
    printf("RESULT %dx%d k=%d %s p=%d %s median_s=%.6f min_s=%.6f\n", j->d.m, j->d.n, j->k, method,
           nprocs, layout, t[reps / 2], t[0]);
  fflush(stdout);
  free(t);
}

static void bench_shape(int m, int n, int k, int reps, int local_only, linalg_dist_ws *dw) {
  float *G = xcalloc((size_t)m * n, sizeof(float));
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++)
      G[(size_t)i * n + j] = (float)(rng_normal(5, 6, 7, (uint64_t)i * n + j) * pow(0.9, j % 200));
  float *Q = xcalloc((size_t)k * n, sizeof(float)), sv[512];
  job j = {.G = G, .k = k, .Q = Q, .sv = sv, .dw = dw};
  svd_opts_default(&j.o);
  j.o.seed = 1;
  linalg_ws lw = {0};
  j.lw = &lw;
  if (nprocs == 1) { /* the local methods */
    if (linalg_ws_reserve(&lw, m, n, k, &j.o)) MPI_Abort(MPI_COMM_WORLD, 1);
    dist_matrix_init(&j.d, MPI_COMM_WORLD, m, n, DIST_ROWS);
    j.kind = SVD_EXACT;
    time_job(&j, reps, "lapack", "whole");
    j.kind = SVD_RANDOMIZED;
    time_job(&j, reps, "randomized-local", "whole");
  }
  for (int lay = 0; lay < 2 && !local_only; lay++) {
    if (nprocs == 1 && lay == DIST_COLS) break; /* one rank: the layouts differ only in a copy */
    dist_matrix_init(&j.d, MPI_COMM_WORLD, m, n, (dist_layout)lay);
    float *Gs = dist_shard_copy(G, &j.d);
    j.Gs = Gs;
    j.dist = 1;
    if (linalg_dist_ws_reserve(dw, &j.d, k, &j.o)) MPI_Abort(MPI_COMM_WORLD, 1);
    const char *layout = lay == DIST_ROWS ? "rows" : "cols";
    j.kind = SVD_EXACT;
    time_job(&j, reps, "scalapack", layout);
    j.kind = SVD_RANDOMIZED;
    time_job(&j, reps, "randomized-dist", layout);
    j.dist = 0;
    free(Gs);
  }
  linalg_ws_free(&lw);
  free(G), free(Q);
}

int main(int argc, char **argv) {
  backend_blas_core_init(argv); /* gorp's own BLAS kernels (backend.h) */
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &nprocs);
  if (argc < 4 || (strcmp(argv[2], "all") && strcmp(argv[2], "local"))) {
    if (rank == 0) fprintf(stderr, "usage: %s REPS all|local MxNxK...\n", argv[0]);
    MPI_Finalize();
    return 64;
  }
  const int reps = atoi(argv[1]), local_only = !strcmp(argv[2], "local");
  linalg_dist_ws dw = {0};
  if (reps < 1 || linalg_dist_ws_init(&dw, MPI_COMM_WORLD)) MPI_Abort(MPI_COMM_WORLD, 64);
  for (int a = 3; a < argc; a++) {
    int m, n, k;
    if (sscanf(argv[a], "%dx%dx%d", &m, &n, &k) != 3 || m < 1 || n < 1 || k < 1 || k > 512 ||
        k > (m < n ? m : n)) {
      if (rank == 0) fprintf(stderr, "bench_svd: bad shape '%s' (MxNxK, K <= 512)\n", argv[a]);
      MPI_Abort(MPI_COMM_WORLD, 64);
    }
    bench_shape(m, n, k, reps, local_only, &dw);
  }
  linalg_dist_ws_free(&dw);
  linalg_dist_finalize();
  MPI_Finalize();
  return 0;
}
