/* GORP's shared basis on a sharded matrix (gorp_basis_dist.h) against the single-rank one
 * (gorp_basis.h) on the gathered matrix. What it proves, for DIST_ROWS and DIST_COLS, even,
 * uneven (p = 3), empty (3 columns or rows over 4 ranks) and lopsided (everything on the last
 * rank) shards:
 * - two successive extensions (task 1, then a task 2 whose moment partly lies in span(S)) append
 *   exactly the columns gorp_basis_extend_cols appends on the whole moment: the same r, the
 *   rank's rows of S equal to the single-rank S's within 1e-4 (the sign convention makes them
 *   unique), unused columns still zero, S^T S = I within 1e-5 with the pieces summed over the
 *   ranks, and for DIST_ROWS the replicated S bitwise the same on every rank;
 * - gorp_dist_project_cols equals gorp_project_cols's shard within 1e-5, and the projected G,
 *   gathered, is orthogonal to the gathered S (|G S| < 1e-4);
 * - nothing is appended for a zero moment, for energy 0 (also for a moment orthogonal to S, where
 *   the residual's norm equals the moment's up to rounding) or at r == cap, the cap stops an
 *   extension midway as on one rank, and energy 1 on a rank-3 moment plus tiny noise appends the
 *   numerical rank and no noise direction;
 * - the calls use no more than gorp_dist_scratch floats (a guard zone after the buffer).
 *
 * How it runs (as test_linalg_dist.c). Started by an MPI launcher it is an MPI program:
 * tests/cli/gorp_basis_dist_mpi.sh runs it with p = 1, 2, 3, 4 under `mpirun --oversubscribe` and
 * ASAN_OPTIONS=detect_leaks=0. Started plainly (ctest's unit run, LeakSanitizer on) it calls no
 * MPI, because Open MPI leaks by design at MPI_Init: it checks only the MPI-free part (the rows
 * of S a rank stores, and the premises of the test matrices on the single-rank reference) and
 * says where the rest runs. Every MPI check is collective: its verdict is the AND over ranks and
 * its number the worst over ranks; rank 0 prints it.
 *
 * Matrices (k, n), the protected axis the n columns: M = U diag(s) W^T + noise with U, W
 * orthonormal (two Gram-Schmidt passes in double over counter-based Gaussians, identical on every
 * rank) and s_t = ratio^t. Task 2's W starts with task 1's leading directions (inside S after
 * task 1), so part of its moment is covered already. The energies sit at least 1e-3 away from
 * every cumulative energy share (checked on the reference), so LAPACK's and ScaLAPACK's
 * rounding cannot change a count. */
#include "gorp/gorp_basis.h"
#include "gorp/gorp_basis_dist.h"
#include "gorp/linalg_dist.h"
#include "gorp/rng.h"
#include "testutil.h"

#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SEED = 20, STREAM = 77, GUARD = 64 };
static const float GUARD_VALUE = 12345.0f;

static int rank = 0, nprocs = 1;

/* ---- test matrices (the same on every rank) ---- */

/* The two extensions of one test: moments (k, n), a basis of up to cap columns. */
typedef struct basis_case {
  const char *name;
  int k, n, cap;
  int terms1; /* task 1: M1 = U1 diag(ratio1^t) V1^T over terms1 directions */
  double ratio1;
  int overlap, terms2; /* task 2: W2 = [V1's first `overlap` columns, fresh ones], terms2 in all */
  double ratio2;
  double noise; /* Gaussian entries of this size added to both moments */
  float e1, e2; /* the energies of the two extensions */
} basis_case;

static const basis_case CASES[] = {
    /* 0.9 keeps 4 of 0.7^t (shares 0.882, 0.942); 0.95 then appends 5 of task 2's fresh
     * directions (0.99 would sit within 1e-3 of a share) */
    {"24x40", 24, 40, 16, 24, 0.7, 2, 24, 0.8, 0.0, 0.9f, 0.95f},
    {"40x24", 40, 24, 16, 24, 0.7, 2, 24, 0.8, 0.0, 0.9f, 0.95f},
    /* rank 3: 0.9 keeps 2 (0.671, 0.913); energy 1 must then stop at the numerical rank (the
     * GORP_BASIS_RANK_TOL break), not append the noise directions of the 17 others */
    {"rank3 30x20", 30, 20, 10, 3, 0.6, 1, 3, 0.6, 1e-8, 0.9f, 1.0f},
    /* 3 columns (or rows) over 4 ranks: a rank holds none */
    {"8x3", 8, 3, 3, 3, 0.7, 1, 3, 0.8, 0.0, 0.5f, 0.99f},
    {"3x8", 3, 8, 8, 3, 0.7, 1, 3, 0.8, 0.0, 0.5f, 0.99f},
};
enum { N_CASES = sizeof CASES / sizeof CASES[0] };

/* Q (rows, cols) row-major with orthonormal columns: the first `keep` from F (rows, keep), the
 * rest Gaussian (stream key) made orthogonal to every column before it. Two Gram-Schmidt passes:
 * one leaves ~1e-8 of the earlier columns behind when they are nearly orthonormal floats. */
static double *orthonormal(int rows, int cols, const double *F, int keep, uint64_t key) {
  double *Q = xcalloc((size_t)rows * cols, sizeof(double));
  for (int i = 0; i < rows; i++)
    for (int j = 0; j < keep; j++) Q[(size_t)i * cols + j] = F[(size_t)i * keep + j];
  for (int j = keep; j < cols; j++) {
    for (int i = 0; i < rows; i++)
      Q[(size_t)i * cols + j] = rng_normal(SEED, STREAM, key, (uint64_t)i * cols + j);
    for (int pass = 0; pass < 2; pass++)
      for (int t = 0; t < j; t++) {
        double dot = 0.0, nn = 0.0;
        for (int i = 0; i < rows; i++) {
          dot += Q[(size_t)i * cols + t] * Q[(size_t)i * cols + j];
          nn += Q[(size_t)i * cols + t] * Q[(size_t)i * cols + t];
        }
        for (int i = 0; i < rows; i++)
          Q[(size_t)i * cols + j] -= dot / nn * Q[(size_t)i * cols + t];
      }
    double nn = 0.0;
    for (int i = 0; i < rows; i++) nn += Q[(size_t)i * cols + j] * Q[(size_t)i * cols + j];
    for (int i = 0; i < rows; i++) Q[(size_t)i * cols + j] /= sqrt(nn);
  }
  return Q;
}

/* M (k, n) = U diag(ratio^t) W^T + noise N(0, 1), W (n, terms), U fresh (stream key). */
static float *moment(int k, int n, int terms, double ratio, const double *W, double noise,
                     uint64_t key) {
  double *U = orthonormal(k, terms, NULL, 0, key);
  float *M = xcalloc((size_t)k * n, sizeof(float));
  for (int i = 0; i < k; i++)
    for (int j = 0; j < n; j++) {
      double acc = noise * rng_normal(SEED, STREAM + 1, key, (uint64_t)i * n + j);
      for (int t = 0; t < terms; t++)
        acc += U[(size_t)i * terms + t] * pow(ratio, t) * W[(size_t)j * terms + t];
      M[(size_t)i * n + j] = (float)acc;
    }
  free(U);
  return M;
}

/* M1, M2 of case c (index ci keys its random streams) and a Gaussian G (k, n) to project. */
static void case_matrices(const basis_case *c, int ci, float **M1, float **M2, float **G) {
  const uint64_t key = 1000 * (uint64_t)(ci + 1);
  double *V1 = orthonormal(c->n, c->terms1, NULL, 0, key);
  double *F = xcalloc((size_t)c->n * (c->overlap ? c->overlap : 1), sizeof(double));
  for (int i = 0; i < c->n; i++)
    for (int j = 0; j < c->overlap; j++)
      F[(size_t)i * c->overlap + j] = V1[(size_t)i * c->terms1 + j];
  double *W2 = orthonormal(c->n, c->terms2, F, c->overlap, key + 1);
  *M1 = moment(c->k, c->n, c->terms1, c->ratio1, V1, c->noise, key + 2);
  *M2 = moment(c->k, c->n, c->terms2, c->ratio2, W2, c->noise, key + 3);
  *G = xcalloc((size_t)c->k * c->n, sizeof(float));
  for (size_t i = 0; i < (size_t)c->k * c->n; i++)
    (*G)[i] = (float)rng_normal(SEED, STREAM + 2, key, i);
  free(V1), free(F), free(W2);
}

/* ---- the single-rank reference (gorp_basis.h on the whole moments) ---- */

typedef struct reference {
  float *S1, *S2; /* S (n, cap) after task 1 and after task 2 */
  int r1, r2, rc;
} reference;

static reference ref_extend(const basis_case *c, const float *M1, const float *M2, float e1,
                            float e2, linalg_ws *w) {
  reference ref = {xcalloc((size_t)c->n * c->cap, sizeof(float)),
                   xcalloc((size_t)c->n * c->cap, sizeof(float)), 0, 0, 0};
  int added = 0;
  ref.rc = gorp_basis_reserve(w, c->n, c->k, c->cap);
  ref.rc |= gorp_basis_extend_cols(ref.S1, &ref.r1, c->cap, M1, c->n, c->k, e1, &added, w);
  memcpy(ref.S2, ref.S1, (size_t)c->n * c->cap * sizeof(float));
  ref.r2 = ref.r1;
  ref.rc |= gorp_basis_extend_cols(ref.S2, &ref.r2, c->cap, M2, c->n, c->k, e2, &added, w);
  return ref;
}

static void ref_free(reference *ref) {
  free(ref->S1), free(ref->S2);
}

/* ---- MPI-free ---- */

/* gorp_dist_basis_rows on hand-built distributions (no communicator needed): DIST_ROWS keeps all
 * n rows of S on every rank, DIST_COLS the rank's own column block. */
static void test_basis_rows(void) {
  int ok = 1;
  for (int n = 1; n < 12; n++)
    for (int p = 1; p <= 5; p++)
      for (int r = 0; r < p; r++) {
        dist_matrix d = {MPI_COMM_NULL, 7, n, DIST_COLS, 0, 0};
        dist_split(n, p, r, &d.local_off, &d.local_len);
        int off = -1, len = -1;
        gorp_dist_basis_rows(&d, 0, &off, &len);
        ok &= off == d.local_off && len == d.local_len;
        d.layout = DIST_ROWS;
        d.m = 5;
        dist_split(d.m, p, r, &d.local_off, &d.local_len);
        gorp_dist_basis_rows(&d, 0, &off, &len);
        ok &= off == 0 && len == n;
      }
  CHECK(ok, "gorp_dist_basis_rows: all n rows for DIST_ROWS, the column block for DIST_COLS");
  printf("%s gorp_dist_basis_rows: all of S for DIST_ROWS, the column block for DIST_COLS\n",
         ok ? "PASS" : "FAIL");
}

/* The premises the MPI checks rely on, on the reference: each extension appends something, task
 * 2 does not fill the basis, and moving the energy by 1e-3 either way changes no count. */
static void test_premises(void) {
  linalg_ws w = {0};
  for (int ci = 0; ci < N_CASES; ci++) {
    const basis_case *c = &CASES[ci];
    float *M1, *M2, *G;
    case_matrices(c, ci, &M1, &M2, &G);
    reference ref = ref_extend(c, M1, M2, c->e1, c->e2, &w);
    int ok = ref.rc == 0 && ref.r1 > 0 && ref.r2 > ref.r1;
    for (int s = -1; s <= 1; s += 2) {
      reference near = ref_extend(c, M1, M2, fminf(fmaxf(c->e1 + s * 1e-3f, 0.0f), 1.0f),
                                  fminf(fmaxf(c->e2 + s * 1e-3f, 0.0f), 1.0f), &w);
      ok &= near.rc == 0 && near.r1 == ref.r1 && near.r2 == ref.r2;
      ref_free(&near);
    }
    CHECK(ok, "%s: reference r = %d then %d (rc %d)", c->name, ref.r1, ref.r2, ref.rc);
    printf("%s reference %-12s energies %.2f, %.2f: r = %d then %d, the same at energy +-1e-3\n",
           ok ? "PASS" : "FAIL", c->name, c->e1, c->e2, ref.r1, ref.r2);
    ref_free(&ref);
    free(M1), free(M2), free(G);
  }
  linalg_ws_free(&w);
}

/* ---- distributed helpers ---- */

/* d for this rank: the even split, or (lopsided) the whole split axis on the last rank. */
static void make_dist(dist_matrix *d, int k, int n, dist_layout layout, int lopsided) {
  dist_matrix_init(d, MPI_COMM_WORLD, k, n, layout);
  if (lopsided) {
    d->local_off = 0;
    d->local_len = rank == nprocs - 1 ? (layout == DIST_ROWS ? k : n) : 0;
  }
}

/* X (total, width) on every rank from the ranks' contiguous row blocks (len, width). */
static void gather_rows(float *X, const float *X_local, int len, int width) {
  int *cnt = xcalloc(nprocs, sizeof(int)), *dsp = xcalloc(nprocs, sizeof(int));
  int mine = len * width;
  MPI_Allgather(&mine, 1, MPI_INT, cnt, 1, MPI_INT, MPI_COMM_WORLD);
  for (int r = 1; r < nprocs; r++) dsp[r] = dsp[r - 1] + cnt[r - 1];
  MPI_Allgatherv(X_local, mine, MPI_FLOAT, X, cnt, dsp, MPI_FLOAT, MPI_COMM_WORLD);
  free(cnt), free(dsp);
}

/* The whole G (k, n) on every rank from its shards under d. */
static void gather_matrix(float *G, const float *G_local, const dist_matrix *d) {
  if (d->layout == DIST_ROWS) {
    gather_rows(G, G_local, d->local_len, d->n);
    return;
  }
  const int len = d->local_len; /* columns: gather the transposes' rows, then transpose back */
  float *T = xcalloc((size_t)len * d->m, sizeof(float)),
        *GT = xcalloc((size_t)d->n * d->m, sizeof(float));
  for (int i = 0; i < d->m; i++)
    for (int j = 0; j < len; j++) T[(size_t)j * d->m + i] = G_local[(size_t)i * len + j];
  gather_rows(GT, T, len, d->m);
  for (int i = 0; i < d->m; i++)
    for (int j = 0; j < d->n; j++) G[(size_t)i * d->n + j] = GT[(size_t)j * d->m + i];
  free(T), free(GT);
}

/* Scratch of `need` floats followed by a guard zone, which no call may write. */
static float *guarded(size_t need) {
  float *s = xcalloc(need + GUARD, sizeof(float));
  for (int i = 0; i < GUARD; i++) s[need + i] = GUARD_VALUE;
  return s;
}
static int guard_intact(const float *s, size_t need) {
  for (int i = 0; i < GUARD; i++)
    if (s[need + i] != GUARD_VALUE) return 0;
  return 1;
}

/* max |S^T S - diag(1 x r, 0 x (cap - r))| of the logical S whose rows [off, off + len) are S_loc:
 * the Gram pieces summed over the ranks when S is split (DIST_COLS); unused columns must be 0. */
static double orth_error(const float *S_loc, int len, int cap, int r, const dist_matrix *d) {
  double *g = xcalloc((size_t)cap * cap, sizeof(double)), worst = 0.0;
  for (int i = 0; i < len; i++)
    for (int a = 0; a < cap; a++)
      for (int b = 0; b < cap; b++)
        g[(size_t)a * cap + b] += (double)S_loc[(size_t)i * cap + a] * S_loc[(size_t)i * cap + b];
  if (d->layout == DIST_COLS)
    MPI_Allreduce(MPI_IN_PLACE, g, cap * cap, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  for (int a = 0; a < cap; a++)
    for (int b = 0; b < cap; b++)
      worst = fmax(worst, fabs(g[(size_t)a * cap + b] - (a == b && a < r ? 1.0 : 0.0)));
  free(g);
  return worst;
}

/* max |S_loc - the reference's rows [off, off + len)|, all cap columns. */
static double rows_diff(const float *S_loc, const float *S_ref, int off, int len, int cap) {
  double worst = 0.0;
  for (int i = 0; i < len; i++)
    for (int j = 0; j < cap; j++)
      worst = fmax(worst,
                   fabs((double)S_loc[(size_t)i * cap + j] - S_ref[(size_t)(off + i) * cap + j]));
  return worst;
}

/* 1 when buf (n floats) is bitwise the same on every rank. */
static int same_everywhere(const float *buf, size_t n) {
  float *copy = xcalloc(n, sizeof(float));
  if (rank == 0) memcpy(copy, buf, n * sizeof(float));
  MPI_Bcast(copy, (int)n, MPI_FLOAT, 0, MPI_COMM_WORLD);
  int same = !memcmp(copy, buf, n * sizeof(float));
  free(copy);
  return same;
}

/* The state after one distributed extension against the reference's. */
static void check_basis(const char *tag, const char *step, const float *S_loc, int r, int added,
                        int r_before, const float *S_ref, int r_ref, const dist_matrix *d,
                        int cap) {
  char name[160];
  int off, len;
  gorp_dist_basis_rows(d, 0, &off, &len);
  snprintf(name, sizeof name, "%s %s: r = single-rank r (%d), added = r - r_before", tag, step,
           r_ref);
  check_all(name, r == r_ref && added == r - r_before, abs(r - r_ref), "|dr| %g");
  snprintf(name, sizeof name, "%s %s: rows of S = single-rank S's (1e-4)", tag, step);
  const double diff = rows_diff(S_loc, S_ref, off, len, cap);
  check_all(name, diff <= 1e-4, diff, "max |dS| %.1e");
  snprintf(name, sizeof name, "%s %s: S^T S = I (1e-5), unused columns 0", tag, step);
  const double orth = orth_error(S_loc, len, cap, r, d);
  check_all(name, orth <= 1e-5, orth, "max |S^T S - I| %.1e");
  if (d->layout == DIST_ROWS) {
    snprintf(name, sizeof name, "%s %s: replicated S bitwise the same on every rank", tag, step);
    check_all(name, same_everywhere(S_loc, (size_t)len * cap), 0.0, "%g");
  }
}

/* ---- the checks ---- */

/* Two extensions and the projection of case ci, sharded by layout (lopsided: all on the last
 * rank), against the single-rank calls on the whole matrices. */
static void test_case(int ci, dist_layout layout, int lopsided, linalg_dist_ws *dw) {
  const basis_case *c = &CASES[ci];
  char tag[96];
  snprintf(tag, sizeof tag, "%s %s%s", c->name, layout == DIST_ROWS ? "rows" : "cols",
           lopsided ? " lopsided" : "");
  float *M1, *M2, *G;
  case_matrices(c, ci, &M1, &M2, &G);
  linalg_ws w = {0};
  reference ref = ref_extend(c, M1, M2, c->e1, c->e2, &w);

  dist_matrix d;
  make_dist(&d, c->k, c->n, layout, lopsided);
  int off, len;
  gorp_dist_basis_rows(&d, 0, &off, &len);
  const size_t need = gorp_dist_scratch(&d, 0, c->cap);
  float *scratch = guarded(need), *S = xcalloc((size_t)len * c->cap, sizeof(float));
  float *M1s = dist_shard_copy(M1, &d), *M2s = dist_shard_copy(M2, &d);
  int rc = ref.rc | gorp_dist_reserve(dw, &d, 0), r = 0, added = -1;
  rc |= gorp_dist_extend_cols(S, &r, c->cap, M1s, &d, c->e1, &added, dw, scratch);
  check_basis(tag, "task 1", S, r, added, 0, ref.S1, ref.r1, &d, c->cap);
  const int r1 = r;
  rc |= gorp_dist_extend_cols(S, &r, c->cap, M2s, &d, c->e2, &added, dw, scratch);
  check_basis(tag, "task 2", S, r, added, r1, ref.S2, ref.r2, &d, c->cap);

  /* the projection alone: both sides use the reference S, so only the products are compared */
  char name[160];
  float *Gs = dist_shard_copy(G, &d), *Gd = dist_shard_copy(G, &d),
        *Sref = xcalloc((size_t)len * c->cap, sizeof(float));
  memcpy(Sref, ref.S2 + (size_t)off * c->cap, (size_t)len * c->cap * sizeof(float));
  float *Gref = xcalloc((size_t)c->k * c->n, sizeof(float));
  memcpy(Gref, G, (size_t)c->k * c->n * sizeof(float));
  rc |= gorp_project_cols(Gref, ref.S2, ref.r2, c->cap, c->n, c->k, &w);
  float *Gref_s = dist_shard_copy(Gref, &d);
  rc |= gorp_dist_project_cols(Gs, Sref, ref.r2, c->cap, &d, scratch);
  const size_t glen = (size_t)d.local_len * (layout == DIST_ROWS ? c->n : c->k);
  double diff = 0.0;
  for (size_t i = 0; i < glen; i++) diff = fmax(diff, fabs((double)Gs[i] - Gref_s[i]));
  snprintf(name, sizeof name, "%s: projection = single-rank projection's shard (1e-5)", tag);
  check_all(name, diff <= 1e-5, diff, "max |dG| %.1e");

  /* with the distributed S: the gathered projected G has no component in the gathered S */
  rc |= gorp_dist_project_cols(Gd, S, r, c->cap, &d, scratch);
  float *Gall = xcalloc((size_t)c->k * c->n, sizeof(float));
  float *Sall = xcalloc((size_t)c->n * c->cap, sizeof(float));
  gather_matrix(Gall, Gd, &d);
  if (layout == DIST_ROWS)
    memcpy(Sall, S, (size_t)c->n * c->cap * sizeof(float));
  else
    gather_rows(Sall, S, len, c->cap);
  double gs = 0.0, g0 = 0.0; /* |G S| after, and before (to see the projection removed something) */
  for (int i = 0; i < c->k; i++)
    for (int j = 0; j < r; j++) {
      double a = 0.0, b = 0.0;
      for (int t = 0; t < c->n; t++) {
        a += (double)Gall[(size_t)i * c->n + t] * Sall[(size_t)t * c->cap + j];
        b += (double)G[(size_t)i * c->n + t] * Sall[(size_t)t * c->cap + j];
      }
      gs = fmax(gs, fabs(a));
      g0 = fmax(g0, fabs(b));
    }
  snprintf(name, sizeof name, "%s: projected G orthogonal to S (|G S| < 1e-4, was >= 0.1)", tag);
  check_all(name, gs < 1e-4 && g0 >= 0.1, gs, "max |G S| %.1e");

  snprintf(name, sizeof name, "%s: every call returned 0, scratch within gorp_dist_scratch", tag);
  check_all(name, rc == 0 && guard_intact(scratch, need), rc, "rc %g");
  ref_free(&ref);
  linalg_ws_free(&w);
  free(M1), free(M2), free(G), free(M1s), free(M2s), free(S), free(scratch);
  free(Gs), free(Gd), free(Sref), free(Gref), free(Gref_s), free(Gall), free(Sall);
}

/* Extensions that must append nothing, or stop at cap, on the even split of case ci. */
static void test_edges(int ci, dist_layout layout, linalg_dist_ws *dw) {
  const basis_case *c = &CASES[ci];
  char tag[96], name[160];
  snprintf(tag, sizeof tag, "%s %s", c->name, layout == DIST_ROWS ? "rows" : "cols");
  float *M1, *M2, *G;
  case_matrices(c, ci, &M1, &M2, &G);
  linalg_ws w = {0};
  reference ref = ref_extend(c, M1, M2, c->e1, c->e2, &w);
  dist_matrix d;
  make_dist(&d, c->k, c->n, layout, 0);
  int off, len;
  gorp_dist_basis_rows(&d, 0, &off, &len);
  const size_t need = gorp_dist_scratch(&d, 0, c->cap),
               sbytes = (size_t)len * c->cap * sizeof(float);
  /* every scenario starts afresh from an empty basis or from S1, task 1's, so that one failure
   * does not leave the next scenario at r == cap */
  float *scratch = guarded(need), *S = xcalloc((size_t)len * c->cap, sizeof(float));
  float *S0 = xcalloc((size_t)len * c->cap, sizeof(float)),
        *S1 = xcalloc((size_t)len * c->cap, sizeof(float));
  float *M1s = dist_shard_copy(M1, &d), *M2s = dist_shard_copy(M2, &d);
  float *Z = xcalloc((size_t)c->k * c->n, sizeof(float)), *Zs = dist_shard_copy(Z, &d);
  int rc = ref.rc | gorp_dist_reserve(dw, &d, 0), r1 = 0, r = 0, added = -1, ok;
  rc |= gorp_dist_extend_cols(S1, &r1, c->cap, M1s, &d, c->e1, &added, dw, scratch);
  snprintf(name, sizeof name, "%s: task 1 from an empty basis keeps %d columns", tag, ref.r1);
  check_all(name, r1 == ref.r1, abs(r1 - ref.r1), "|dr| %g");

  /* a zero moment: nothing to protect, whether S is empty or not */
  rc |= gorp_dist_extend_cols(S, &r, c->cap, Zs, &d, 0.99f, &added, dw, scratch);
  ok = r == 0 && added == 0 && !memcmp(S, S0, sbytes);
  snprintf(name, sizeof name, "%s: zero moment, r = 0: appends nothing", tag);
  check_all(name, ok, r, "r %g");
  memcpy(S, S1, sbytes), r = r1;
  rc |= gorp_dist_extend_cols(S, &r, c->cap, Zs, &d, 0.99f, &added, dw, scratch);
  ok = r == r1 && added == 0 && !memcmp(S, S1, sbytes);
  snprintf(name, sizeof name, "%s: zero moment, r = %d: appends nothing", tag, r1);
  check_all(name, ok, abs(r - r1), "|dr| %g");

  /* energy 0: nothing is ever wanted */
  memcpy(S, S0, sbytes), r = 0;
  rc |= gorp_dist_extend_cols(S, &r, c->cap, M1s, &d, 0.0f, &added, dw, scratch);
  ok = r == 0 && added == 0 && !memcmp(S, S0, sbytes);
  snprintf(name, sizeof name, "%s: energy 0, r = 0: appends nothing", tag);
  check_all(name, ok, r, "r %g");
  memcpy(S, S1, sbytes), r = r1;
  rc |= gorp_dist_extend_cols(S, &r, c->cap, M2s, &d, 0.0f, &added, dw, scratch);
  ok = r == r1 && added == 0 && !memcmp(S, S1, sbytes);
  snprintf(name, sizeof name, "%s: energy 0, r = %d: appends nothing", tag, r1);
  check_all(name, ok, abs(r - r1), "|dr| %g");
  /* a moment orthogonal to S (built against the reference S, which the distributed one equals to
   * 1e-6): the share already covered is 0 in exact arithmetic, so rounding puts it a hair either
   * side of 0, and energy 0 must still append nothing (gorp_basis.h) */
  double *Sd = xcalloc((size_t)c->n * ref.r1, sizeof(double));
  for (int i = 0; i < c->n; i++)
    for (int j = 0; j < ref.r1; j++) Sd[(size_t)i * ref.r1 + j] = ref.S1[(size_t)i * c->cap + j];
  const int terms = c->n - ref.r1 < c->k ? c->n - ref.r1 : c->k;
  double *Wp = orthonormal(c->n, ref.r1 + terms, Sd, ref.r1, 4242);
  double *Wf = xcalloc((size_t)c->n * terms, sizeof(double)); /* the fresh columns alone */
  for (int i = 0; i < c->n; i++)
    for (int j = 0; j < terms; j++)
      Wf[(size_t)i * terms + j] = Wp[(size_t)i * (ref.r1 + terms) + ref.r1 + j];
  float *P = moment(c->k, c->n, terms, 0.7, Wf, 0.0, 4343), *Ps = dist_shard_copy(P, &d);
  int rp = ref.r1, added_ref = -1;
  float *Sp = xcalloc((size_t)c->n * c->cap, sizeof(float));
  memcpy(Sp, ref.S1, (size_t)c->n * c->cap * sizeof(float));
  rc |= gorp_basis_extend_cols(Sp, &rp, c->cap, P, c->n, c->k, 0.0f, &added_ref, &w);
  memcpy(S, S1, sbytes), r = r1;
  rc |= gorp_dist_extend_cols(S, &r, c->cap, Ps, &d, 0.0f, &added, dw, scratch);
  ok = r == r1 && added == 0 && !memcmp(S, S1, sbytes);
  snprintf(name, sizeof name, "%s: energy 0, moment orthogonal to S: appends nothing", tag);
  check_all(name, ok, added, "added %g");
  snprintf(name, sizeof name, "%s: energy 0, moment orthogonal to S: single-rank appends nothing",
           tag);
  check_all(name, added_ref == 0, added_ref, "added %g");
  free(Sd), free(Wp), free(Wf), free(P), free(Ps), free(Sp);

  /* r == cap: a full basis takes nothing more (cap = the columns task 1 keeps) */
  float *Sc = xcalloc((size_t)len * ref.r1, sizeof(float)),
        *sc = guarded(gorp_dist_scratch(&d, 0, ref.r1));
  int rfull = 0;
  rc |= gorp_dist_extend_cols(Sc, &rfull, ref.r1, M1s, &d, c->e1, &added, dw, sc);
  float *Sc0 = xcalloc((size_t)len * ref.r1, sizeof(float));
  memcpy(Sc0, Sc, (size_t)len * ref.r1 * sizeof(float));
  rc |= gorp_dist_extend_cols(Sc, &rfull, ref.r1, M2s, &d, c->e2, &added, dw, sc);
  ok = rfull == ref.r1 && added == 0 && !memcmp(Sc, Sc0, (size_t)len * ref.r1 * sizeof(float));
  snprintf(name, sizeof name, "%s: r == cap = %d: appends nothing", tag, ref.r1);
  check_all(name, ok, abs(rfull - ref.r1), "|dr| %g");
  int guards = guard_intact(sc, gorp_dist_scratch(&d, 0, ref.r1));
  free(Sc), free(Sc0), free(sc);

  /* the cap stops an extension midway: the first cap columns of the uncapped result */
  const int cap = ref.r1 - 1;
  float *Sm = xcalloc((size_t)len * cap, sizeof(float)),
        *Sm_ref = xcalloc((size_t)c->n * cap, sizeof(float));
  float *sm = guarded(gorp_dist_scratch(&d, 0, cap));
  int rm = 0, rm_ref = 0;
  rc |= gorp_basis_extend_cols(Sm_ref, &rm_ref, cap, M1, c->n, c->k, c->e1, &added_ref, &w);
  rc |= gorp_dist_extend_cols(Sm, &rm, cap, M1s, &d, c->e1, &added, dw, sm);
  snprintf(name, sizeof name, "%s: cap %d stops task 1 at r = cap as single-rank", tag, cap);
  check_all(name, rm == cap && rm_ref == cap && added == cap, abs(rm - cap), "|dr| %g");
  snprintf(name, sizeof name, "%s: cap %d: rows of S = single-rank S's (1e-4)", tag, cap);
  const double diff = rows_diff(Sm, Sm_ref, off, len, cap);
  check_all(name, diff <= 1e-4, diff, "max |dS| %.1e");
  guards &= guard_intact(sm, gorp_dist_scratch(&d, 0, cap));
  free(Sm), free(Sm_ref), free(sm);

  snprintf(name, sizeof name, "%s edges: every call returned 0, scratch within bounds", tag);
  check_all(name, rc == 0 && guards && guard_intact(scratch, need), rc, "rc %g");
  ref_free(&ref);
  linalg_ws_free(&w);
  free(M1), free(M2), free(G), free(M1s), free(M2s), free(Z), free(Zs), free(S), free(S0), free(S1);
  free(scratch);
}

/* Energy 1 on a rank-3 moment plus noise far below GORP_BASIS_RANK_TOL: the numerical rank (3)
 * and no noise direction, from an empty basis (sigma_1 from the residual's own SVD). */
static void test_numerical_rank(int ci, dist_layout layout, linalg_dist_ws *dw) {
  const basis_case *c = &CASES[ci];
  char name[160];
  float *M1, *M2, *G;
  case_matrices(c, ci, &M1, &M2, &G);
  linalg_ws w = {0};
  int r_ref = 0, added_ref = -1, r = 0, added = -1;
  float *S_ref = xcalloc((size_t)c->n * c->cap, sizeof(float));
  int rc = gorp_basis_reserve(&w, c->n, c->k, c->cap);
  rc |= gorp_basis_extend_cols(S_ref, &r_ref, c->cap, M1, c->n, c->k, 1.0f, &added_ref, &w);
  dist_matrix d;
  make_dist(&d, c->k, c->n, layout, 0);
  int off, len;
  gorp_dist_basis_rows(&d, 0, &off, &len);
  float *S = xcalloc((size_t)len * c->cap, sizeof(float)), *M1s = dist_shard_copy(M1, &d);
  float *scratch = guarded(gorp_dist_scratch(&d, 0, c->cap));
  rc |= gorp_dist_reserve(dw, &d, 0);
  rc |= gorp_dist_extend_cols(S, &r, c->cap, M1s, &d, 1.0f, &added, dw, scratch);
  snprintf(name, sizeof name, "%s %s: energy 1 appends the numerical rank %d = single-rank",
           c->name, layout == DIST_ROWS ? "rows" : "cols", c->terms1);
  check_all(name, rc == 0 && r == c->terms1 && r_ref == c->terms1 && added == r, r, "r %g");
  snprintf(name, sizeof name, "%s %s: energy 1: rows of S = single-rank S's (1e-4)", c->name,
           layout == DIST_ROWS ? "rows" : "cols");
  const double diff = rows_diff(S, S_ref, off, len, c->cap);
  check_all(name, diff <= 1e-4, diff, "max |dS| %.1e");
  linalg_ws_free(&w);
  free(M1), free(M2), free(G), free(S_ref), free(S), free(M1s), free(scratch);
}

int main(int argc, char **argv) {
  if (!launched_by_mpi()) {
    test_basis_rows();
    test_premises();
    printf("note: the distributed checks run under mpirun: tests/cli/gorp_basis_dist_mpi.sh runs "
           "this binary with p = 1, 2, 3, 4\n");
    return tests_finish();
  }
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &nprocs);
  if (rank == 0) {
    test_basis_rows();
    test_premises();
  }
  linalg_dist_ws dw = {0};
  int rc = linalg_dist_ws_init(&dw, MPI_COMM_WORLD);
  check_all("a BLACS grid over the world", rc == 0, rc, "rc %g");
  for (int layout = DIST_ROWS; layout <= DIST_COLS; layout++) {
    for (int ci = 0; ci < N_CASES; ci++) test_case(ci, (dist_layout)layout, 0, &dw);
    /* the small cases again with everything on the last rank: p - 1 empty shards */
    test_case(3, (dist_layout)layout, 1, &dw);
    test_case(4, (dist_layout)layout, 1, &dw);
    test_edges(0, (dist_layout)layout, &dw);
    test_edges(1, (dist_layout)layout, &dw);
    test_numerical_rank(2, (dist_layout)layout, &dw);
  }
  linalg_dist_ws_free(&dw);
  linalg_dist_finalize();
  int fails = n_fail, all_fails = 0;
  MPI_Allreduce(&fails, &all_fails, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0) tests_finish();
  MPI_Finalize();
  return all_fails != 0;
}
