/* The distributed top-k SVD (linalg_dist.h) against the local LAPACK path (linalg.h), on matrices
 * of the real GORP shapes (11008 x 8, 4096 x 8, 8 x 4096, 512 x 512) sharded by rows and by
 * columns, plus uneven, empty and lopsided shards, a split communicator (two TP groups) and the
 * collective error paths.
 *
 * How it runs. Started by an MPI launcher (mpirun sets OMPI_COMM_WORLD_SIZE, srun PMIX_RANK) it is
 * an MPI program: tests/cli/linalg_dist_mpi.sh runs it with p = 1, 2, 3, 4 under
 * `mpirun --oversubscribe` and ASAN_OPTIONS=detect_leaks=0. Started plainly (ctest's unit run,
 * where LeakSanitizer is on) it calls no MPI at all: Open MPI leaks by design at MPI_Init and
 * would fail every sanitizer run. It then checks only the MPI-free part (dist_split) and says
 * where the rest runs. Every check is collective: its verdict is the AND over ranks and its
 * number the worst over ranks; rank 0 prints it.
 *
 * Matrices: G = U diag(s) V^T with U, V from a double QR of Gaussian matrices and s_t = 0.7^t
 * (gaps of 30%), identical on every rank; each rank keeps its shard. References: linalg_topk_*
 * on the whole G. Tolerances (TOOLCHAIN.md: float results differ in the 7th digit between BLAS
 * thread counts): values 1e-4 relative, principal-angle sine 1e-3, signed dots 1 - 1e-4. The
 * randomized path (oversampling 8, 2 power iterations) sketches the whole range of the x8 shapes
 * (l = min(k + 8, 8) = 8: exact up to rounding) and errs by ~(0.7^9)^5 ~ 1e-7 on the square one
 * (k = 8, l = 16), well inside. With p = 1 the randomized path must be bit-identical to
 * linalg_topk_* SVD_RANDOMIZED. */
#include "gorp/err.h"
#include "gorp/linalg.h"
#include "gorp/linalg_dist.h"
#include "gorp/rng.h"
#include "testutil.h"

#include <lapacke.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rank, nprocs;

/* ---- reference matrices ---- */

/* U (rows, cols) row-major with orthonormal columns: double Householder QR of a Gaussian. */
static double *rand_orthonormal(int rows, int cols, uint64_t key) {
  double *A = xcalloc((size_t)rows * cols, sizeof(double)), *tau = xcalloc(cols, sizeof(double));
  for (size_t i = 0; i < (size_t)rows * cols; i++) A[i] = rng_normal(21, 88, key, i);
  if (LAPACKE_dgeqrf(LAPACK_COL_MAJOR, rows, cols, A, rows, tau) ||
      LAPACKE_dorgqr(LAPACK_COL_MAJOR, rows, cols, cols, A, rows, tau)) {
    fprintf(stderr, "test_linalg_dist: reference QR failed\n");
    exit(2);
  }
  double *U = xcalloc((size_t)rows * cols, sizeof(double));
  for (int i = 0; i < rows; i++)
    for (int j = 0; j < cols; j++) U[(size_t)i * cols + j] = A[i + (size_t)j * rows];
  free(A);
  free(tau);
  return U;
}

/* G (m, n) = U diag(0.7^t) V^T over r terms (0.7^96 ~ 1e-15: more terms change no float). */
static float *build(int m, int n, uint64_t key) {
  const int r = m < n ? (m < 96 ? m : 96) : (n < 96 ? n : 96);
  double *U = rand_orthonormal(m, r, key), *V = rand_orthonormal(n, r, key + 500);
  double *row = xcalloc(r, sizeof(double));
  float *G = xcalloc((size_t)m * n, sizeof(float));
  for (int i = 0; i < m; i++) {
    for (int t = 0; t < r; t++) row[t] = U[(size_t)i * r + t] * pow(0.7, t);
    for (int j = 0; j < n; j++) {
      double acc = 0.0;
      for (int t = 0; t < r; t++) acc += row[t] * V[(size_t)j * r + t];
      G[(size_t)i * n + j] = (float)acc;
    }
  }
  free(U), free(V), free(row);
  return G;
}

/* ---- comparisons (in double) ---- */

/* k vectors of length len: vector j at x + j * sv, entries sv_e apart. */
typedef struct vecs {
  const float *x;
  int len, sv, se;
} vecs;
static vecs rows_of(const float *Q, int n) {
  return (vecs){Q, n, n, 1};
}
static vecs cols_of(const float *P, int m, int k) {
  return (vecs){P, m, 1, k};
}
static double at(vecs v, int j, int t) {
  return v.x[(size_t)j * v.sv + (size_t)t * v.se];
}

/* ||B - A (A^T B)||_F >= the sine of the largest principal angle between span(a) and span(b). */
static double subspace_sine(vecs a, vecs b, int k) {
  double *c = xcalloc(k, sizeof(double)), res2 = 0.0;
  for (int j = 0; j < k; j++) {
    for (int i = 0; i < k; i++) {
      c[i] = 0.0;
      for (int t = 0; t < a.len; t++) c[i] += at(a, i, t) * at(b, j, t);
    }
    for (int t = 0; t < a.len; t++) {
      double d = at(b, j, t);
      for (int i = 0; i < k; i++) d -= at(a, i, t) * c[i];
      res2 += d * d;
    }
  }
  free(c);
  return sqrt(res2);
}

/* min over j of <a_j, b_j>: 1 when each vector equals the reference, signs included. */
static double min_dot(vecs a, vecs b, int k) {
  double worst = 1.0;
  for (int j = 0; j < k; j++) {
    double d = 0.0;
    for (int t = 0; t < a.len; t++) d += at(a, j, t) * at(b, j, t);
    worst = fmin(worst, d);
  }
  return worst;
}

static double max_rel(const float *a, const float *ref, int k) {
  double worst = 0.0;
  for (int j = 0; j < k; j++) worst = fmax(worst, fabs((double)a[j] - ref[j]) / fabs(ref[j]));
  return worst;
}

/* 1 when buf (n floats) is bitwise the same on every rank of comm. */
static int same_everywhere(const float *buf, size_t n, MPI_Comm comm) {
  int crank;
  MPI_Comm_rank(comm, &crank);
  float *copy = xcalloc(n, sizeof(float));
  if (crank == 0) memcpy(copy, buf, n * sizeof(float));
  MPI_Bcast(copy, (int)n, MPI_FLOAT, 0, comm);
  int same = !memcmp(copy, buf, n * sizeof(float)), all = same;
  MPI_Allreduce(&same, &all, 1, MPI_INT, MPI_MIN, comm);
  free(copy);
  return all;
}

/* The whole P (m, k) on every rank from the ranks' rows (DIST_ROWS). */
static void gather_rows(float *P, const float *P_local, const dist_matrix *d, int k) {
  int p;
  MPI_Comm_size(d->comm, &p);
  int *cnt = xcalloc(p, sizeof(int)), *dsp = xcalloc(p, sizeof(int)), mine = d->local_len * k;
  MPI_Allgather(&mine, 1, MPI_INT, cnt, 1, MPI_INT, d->comm);
  for (int r = 1; r < p; r++) dsp[r] = dsp[r - 1] + cnt[r - 1];
  MPI_Allgatherv(P_local, mine, MPI_FLOAT, P, cnt, dsp, MPI_FLOAT, d->comm);
  free(cnt), free(dsp);
}

/* ---- one matrix, one sharding: both methods, both sides, against LAPACK ---- */

typedef struct result {
  float *Q, *P, *sq, *sp; /* Q (k, n), P (m, k) whole, values of both calls */
  int rc;
} result;

static void result_alloc(result *r, int m, int n, int k) {
  r->Q = xcalloc((size_t)k * n, sizeof(float));
  r->P = xcalloc((size_t)m * k, sizeof(float));
  r->sq = xcalloc(k, sizeof(float));
  r->sp = xcalloc(k, sizeof(float));
  r->rc = 0;
}
static void result_free(result *r) {
  free(r->Q), free(r->P), free(r->sq), free(r->sp);
}

static void run_dist(result *r, const float *Gs, const dist_matrix *d, int k, svd_kind kind,
                     const svd_opts *o, linalg_dist_ws *w) {
  float *Pl = xcalloc((size_t)d->local_len * k, sizeof(float));
  float *P = d->layout == DIST_ROWS ? Pl : r->P;
  r->rc = linalg_dist_topk_right(r->Q, r->sq, Gs, d, k, kind, o, w);
  r->rc |= linalg_dist_topk_left(P, r->sp, Gs, d, k, kind, o, w);
  if (d->layout == DIST_ROWS) gather_rows(r->P, Pl, d, k);
  free(Pl);
}

static void compare(const char *what, const result *r, const result *ref, int m, int n, int k,
                    int check_dots) {
  char name[160];
  const double sv = fmax(max_rel(r->sq, ref->sq, k), max_rel(r->sp, ref->sq, k));
  const double sin_r = subspace_sine(rows_of(ref->Q, n), rows_of(r->Q, n), k);
  const double sin_l = subspace_sine(cols_of(ref->P, m, k), cols_of(r->P, m, k), k);
  snprintf(name, sizeof name, "%s: singular values within 1e-4 of LAPACK", what);
  check_all(name, !r->rc && sv <= 1e-4, sv, "max rel err %.2e");
  snprintf(name, sizeof name, "%s: subspaces (right, left) within sine 1e-3 of LAPACK", what);
  check_all(name, !r->rc && sin_r <= 1e-3 && sin_l <= 1e-3, fmax(sin_r, sin_l), "sine %.2e");
  if (!check_dots) return;
  const double dot = fmin(min_dot(rows_of(ref->Q, n), rows_of(r->Q, n), k),
                          min_dot(cols_of(ref->P, m, k), cols_of(r->P, m, k), k));
  snprintf(name, sizeof name, "%s: each vector = LAPACK's, same sign (dot >= 1 - 1e-4)", what);
  check_all(name, !r->rc && dot >= 1 - 1e-4, 1 - dot, "1 - min dot %.2e");
}

static const char *layout_name(dist_layout l) {
  return l == DIST_ROWS ? "rows" : "cols";
}

/* G (m, n) sharded by d (the even split unless custom): ScaLAPACK and randomized vs LAPACK. */
static void test_matrix(const float *G, const dist_matrix *d, int k, const char *tag,
                        linalg_dist_ws *w) {
  const int m = d->m, n = d->n;
  char what[128];
  svd_opts o;
  svd_opts_default(&o);
  o.seed = 4242;
  o.counter = (uint64_t)m * 7 + n;

  linalg_ws lw = {0};
  result ref, loc_rand, ex, ra;
  result_alloc(&ref, m, n, k);
  result_alloc(&loc_rand, m, n, k);
  result_alloc(&ex, m, n, k);
  result_alloc(&ra, m, n, k);
  ref.rc = linalg_ws_reserve(&lw, m, n, k, &o);
  ref.rc |= linalg_topk_right(ref.Q, ref.sq, G, m, n, k, SVD_EXACT, NULL, &lw);
  ref.rc |= linalg_topk_left(ref.P, ref.sp, G, m, n, k, SVD_EXACT, NULL, &lw);
  loc_rand.rc = linalg_topk_right(loc_rand.Q, loc_rand.sq, G, m, n, k, SVD_RANDOMIZED, &o, &lw);
  loc_rand.rc |= linalg_topk_left(loc_rand.P, loc_rand.sp, G, m, n, k, SVD_RANDOMIZED, &o, &lw);

  float *Gs = dist_shard_copy(G, d);
  int rc = linalg_dist_ws_reserve(w, d, k, &o);
  const long grows = w->n_grow;
  run_dist(&ex, Gs, d, k, SVD_EXACT, NULL, w);
  run_dist(&ra, Gs, d, k, SVD_RANDOMIZED, &o, w);
  ex.rc |= rc;
  ra.rc |= rc;

  snprintf(what, sizeof what, "%dx%d k=%d %s%s scalapack", m, n, k, layout_name(d->layout), tag);
  compare(what, &ex, &ref, m, n, k, 1);
  snprintf(what, sizeof what, "%dx%d k=%d %s%s randomized", m, n, k, layout_name(d->layout), tag);
  compare(what, &ra, &ref, m, n, k, 1);
  const size_t nq = (size_t)k * n, np = (size_t)m * k;
  if (nprocs == 1 && d->comm == MPI_COMM_WORLD) {
    const int same = !ra.rc && !memcmp(ra.Q, loc_rand.Q, nq * 4) &&
                     !memcmp(ra.P, loc_rand.P, np * 4) && !memcmp(ra.sq, loc_rand.sq, k * 4) &&
                     !memcmp(ra.sp, loc_rand.sp, k * 4);
    snprintf(what, sizeof what,
             "%dx%d k=%d %s%s randomized, p = 1: bit-identical to linalg_topk_* randomized", m, n,
             k, layout_name(d->layout), tag);
    check_all(what, same, 0.0, "%g");
  }
  int same = same_everywhere(ex.Q, nq, d->comm) && same_everywhere(ex.sq, k, d->comm) &&
             same_everywhere(ra.Q, nq, d->comm) && same_everywhere(ra.sq, k, d->comm) &&
             same_everywhere(ex.sp, k, d->comm) && same_everywhere(ra.sp, k, d->comm);
  if (d->layout == DIST_COLS)
    same = same && same_everywhere(ex.P, np, d->comm) && same_everywhere(ra.P, np, d->comm);
  snprintf(what, sizeof what, "%dx%d k=%d %s%s: replicated outputs bitwise equal on all ranks", m,
           n, k, layout_name(d->layout), tag);
  check_all(what, same, 0.0, "%g");
  snprintf(what, sizeof what, "%dx%d k=%d %s%s: the calls allocate nothing (workspace kept)", m, n,
           k, layout_name(d->layout), tag);
  check_all(what, w->n_grow == grows, (double)(w->n_grow - grows), "grew %g times");

  free(Gs);
  linalg_ws_free(&lw);
  result_free(&ref), result_free(&loc_rand), result_free(&ex), result_free(&ra);
}

static void test_real_shapes(linalg_dist_ws *w) {
  static const struct {
    int m, n, k;
  } shapes[] = {{11008, 8, 4}, {4096, 8, 4}, {8, 4096, 4}, {512, 512, 8}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    float *G = build(shapes[s].m, shapes[s].n, 100 + s);
    for (int lay = 0; lay < 2; lay++) {
      dist_matrix d;
      dist_matrix_init(&d, MPI_COMM_WORLD, shapes[s].m, shapes[s].n, (dist_layout)lay);
      test_matrix(G, &d, shapes[s].k, "", w);
    }
    free(G);
  }
}

/* Shards that the even split never makes: everything on the last rank; matrices with fewer rows
 * (columns) than ranks, so with fewer singular values than ranks (empty shards; for p = 4 the
 * even split of 3 rows leaves rank 0 empty, and ScaLAPACK runs on a grid of 3). */
static void test_odd_shards(linalg_dist_ws *w) {
  float *G = build(300, 40, 7);
  for (int lay = 0; lay < 2; lay++) {
    dist_matrix d;
    dist_matrix_init(&d, MPI_COMM_WORLD, 300, 40, (dist_layout)lay);
    const int L = lay == DIST_ROWS ? 300 : 40;
    d.local_off = 0;
    d.local_len = rank == nprocs - 1 ? L : 0;
    test_matrix(G, &d, 4, " all-on-last-rank", w);
  }
  free(G);
  float *T = build(3, 7, 8), *Tt = build(7, 3, 9);
  dist_matrix d;
  dist_matrix_init(&d, MPI_COMM_WORLD, 3, 7, DIST_ROWS);
  test_matrix(T, &d, 2, " fewer-rows-than-ranks", w);
  dist_matrix_init(&d, MPI_COMM_WORLD, 7, 3, DIST_COLS);
  test_matrix(Tt, &d, 2, " fewer-cols-than-ranks", w);
  free(T), free(Tt);
  /* 5 rows over a grid of 4: the block size 2 leaves the last grid rank without rows of G. */
  float *F = build(5, 9, 10);
  dist_matrix_init(&d, MPI_COMM_WORLD, 5, 9, DIST_ROWS);
  test_matrix(F, &d, 3, " short-split-axis", w);
  free(F);
}

/* Two TP groups of a split world: each builds its own grid and solves its own matrix. */
static void test_split_comm(void) {
  MPI_Comm tp;
  MPI_Comm_split(MPI_COMM_WORLD, rank / 2, rank, &tp);
  linalg_dist_ws w = {0};
  int rc = linalg_dist_ws_init(&w, tp);
  check_all("split world: a BLACS grid over each TP sub-communicator", rc == 0, rc, "rc %g");
  float *G = build(1000, 24, 50 + rank / 2);
  for (int lay = 0; lay < 2; lay++) {
    dist_matrix d;
    dist_matrix_init(&d, tp, 1000, 24, (dist_layout)lay);
    test_matrix(G, &d, 3, " tp-subgroup", &w);
  }
  free(G);
  linalg_dist_ws_free(&w);
  MPI_Comm_free(&tp);
}

/* ---- errors: refused on every rank with the same code, never a hang ---- */
static void test_errors(linalg_dist_ws *w) {
  const int m = 64, n = 10, k = 3;
  float *G = build(m, n, 77), Q[3 * 10], sv[3];
  dist_matrix d;
  dist_matrix_init(&d, MPI_COMM_WORLD, m, n, DIST_ROWS);
  float *Gs = dist_shard_copy(G, &d);
  int rc = linalg_dist_ws_reserve(w, &d, k, NULL);
  if (rank == 0) printf("     (expected error messages follow, until 'end of expected errors')\n");
  fflush(stdout);

  rc = linalg_dist_topk_right(Q, sv, Gs, &d, 0, SVD_EXACT, NULL, w);
  check_all("k = 0 is refused on every rank", rc == GORP_EINPUT, rc, "rc %g");

  if (rank == nprocs - 1 && d.local_len > 0) Gs[d.local_len * n - 1] = NAN;
  rc = linalg_dist_topk_right(Q, sv, Gs, &d, k, SVD_RANDOMIZED, NULL, w);
  check_all("a NaN on the last rank only: every rank returns the numerical error", rc == GORP_ENUM,
            rc, "rc %g");
  free(Gs);
  Gs = dist_shard_copy(G, &d);

  if (nprocs > 1) {
    rc = linalg_dist_topk_right(Q, sv, Gs, &d, rank == 1 ? 2 : k, SVD_EXACT, NULL, w);
    check_all("k differing between ranks is refused on every rank", rc == GORP_EINPUT, rc, "rc %g");
    dist_matrix bad = d;
    if (rank == 0) bad.local_len--; /* a gap between rank 0's rows and rank 1's */
    rc = linalg_dist_topk_left(Q, sv, Gs, &bad, k, SVD_EXACT, NULL, w);
    check_all("ranges that do not tile the rows are refused on every rank", rc == GORP_EINPUT, rc,
              "rc %g");
  }
  linalg_dist_ws small = {0};
  dist_matrix big;
  dist_matrix_init(&big, MPI_COMM_WORLD, 2000, 300, DIST_ROWS);
  float *Gb = xcalloc((size_t)big.local_len * 300, sizeof(float)), *Qb = xcalloc(3 * 300, 4);
  rc = linalg_dist_ws_init(&small, MPI_COMM_WORLD);
  rc |= linalg_dist_ws_reserve(&small, &d, k, NULL);
  const long grows = small.n_grow;
  int rc_ex = linalg_dist_topk_right(Qb, sv, Gb, &big, k, SVD_EXACT, NULL, &small);
  int rc_ra = linalg_dist_topk_right(Qb, sv, Gb, &big, k, SVD_RANDOMIZED, NULL, &small);
  check_all("a matrix bigger than reserved is refused on every rank, not grown",
            !rc && rc_ex == GORP_EINPUT && rc_ra == GORP_EINPUT && small.n_grow == grows, rc_ex,
            "rc %g");
  linalg_dist_ws_free(&small);
  if (rank == 0) printf("     (end of expected errors)\n");
  rc = linalg_dist_topk_right(Q, sv, Gs, &d, k, SVD_EXACT, NULL, w);
  check_all("after the refusals the workspace still works", rc == 0, rc, "rc %g");
  free(G), free(Gs), free(Gb), free(Qb);
}

/* ---- MPI-free ---- */
static void test_split(void) {
  int ok = 1;
  for (int total = 0; total < 40; total++)
    for (int p = 1; p <= 6; p++) {
      int next = 0;
      for (int r = 0; r < p; r++) {
        int off, len;
        dist_split(total, p, r, &off, &len);
        ok &= off == next && len >= total / p && len <= total / p + 1;
        next = off + len;
      }
      ok &= next == total;
    }
  int off, len;
  dist_split(11008, 3, 2, &off, &len);
  ok &= off == 7338 && len == 3670;
  CHECK(ok, "dist_split: contiguous, in rank order, lengths floor or ceil of total / p");
  printf("%s dist_split tiles [0, total) evenly for total < 40, p <= 6\n", ok ? "PASS" : "FAIL");
}

int main(int argc, char **argv) {
  if (!launched_by_mpi()) {
    test_split();
    printf("note: the distributed checks run under mpirun: tests/cli/linalg_dist_mpi.sh runs this "
           "binary with p = 1, 2, 3, 4\n");
    return tests_finish();
  }
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &nprocs);
  if (rank == 0) test_split();
  linalg_dist_ws w = {0};
  int rc = linalg_dist_ws_init(&w, MPI_COMM_WORLD);
  check_all("a BLACS grid over the world", rc == 0, rc, "rc %g");
  test_real_shapes(&w);
  test_odd_shards(&w);
  test_errors(&w);
  linalg_dist_ws_free(&w);
  test_split_comm();
  linalg_dist_finalize();
  int fails = n_fail, all_fails = 0;
  MPI_Allreduce(&fails, &all_fails, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0) tests_finish();
  MPI_Finalize();
  return all_fails != 0;
}
