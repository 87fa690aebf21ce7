/* The shared basis of a sharded matrix (see gorp_basis_dist.h). */
#include "gorp/gorp_basis_dist.h"

#include "gorp/backend.h"
#include "gorp/err.h"
#include "gorp/gorp_basis.h"

#include <math.h>
#include <string.h>

static int imin(int a, int b) {
  return a < b ? a : b;
}

/* The transposed logical matrix: the same shard, the split axis renamed. */
static dist_matrix transposed(const dist_matrix *d) {
  dist_matrix t = *d;
  t.m = d->n;
  t.n = d->m;
  t.layout = d->layout == DIST_ROWS ? DIST_COLS : DIST_ROWS;
  return t;
}

/* out (cols, rows) = in (rows, cols)^T */
static void transpose(float *out, const float *in, int rows, int cols) {
  for (int i = 0; i < rows; i++)
    for (int j = 0; j < cols; j++) out[(size_t)j * rows + i] = in[(size_t)i * cols + j];
}

/* This rank's shard of M: rows x cols, its columns starting at col_off of the logical n. */
static void shard(const dist_matrix *d, int *rows, int *cols, int *col_off) {
  const int split_cols = d->layout == DIST_COLS;
  *rows = split_cols ? d->m : d->local_len;
  *cols = split_cols ? d->local_len : d->n;
  *col_off = split_cols ? d->local_off : 0;
}

void gorp_dist_basis_rows(const dist_matrix *d, int on_rows, int *off, int *len) {
  const dist_matrix t = on_rows ? transposed(d) : *d;
  int rows;
  shard(&t, &rows, len, off);
}

size_t gorp_dist_scratch(const dist_matrix *d, int on_rows, int cap) {
  const dist_matrix t = on_rows ? transposed(d) : *d;
  int rows, cols, off;
  shard(&t, &rows, &cols, &off);
  const size_t nv = (size_t)imin(t.m, t.n), shard_len = (size_t)rows * cols;
  /* [on the rows: the transposed shard] C (rows, cap) | R (rows, cols) | V (nv, n) | sv (nv) |
   * u (cols) | c (cap) */
  return (on_rows ? shard_len : 0) + (size_t)rows * cap + shard_len + nv * t.n + nv + (size_t)cols +
         (size_t)cap;
}

int gorp_dist_reserve(linalg_dist_ws *dw, const dist_matrix *d, int on_rows) {
  const dist_matrix t = on_rows ? transposed(d) : *d;
  return linalg_dist_ws_reserve(dw, &t, imin(t.m, t.n), NULL);
}

/* In-place sum over the group when the protected axis is split (else every rank holds it all). */
static int sum_split(const dist_matrix *d, void *x, int n, MPI_Datatype type) {
  if (d->layout != DIST_COLS) return GORP_OK;
  GORP_MPI(MPI_Allreduce(MPI_IN_PLACE, x, n, type, MPI_SUM, d->comm));
  return GORP_OK;
}

/* G (rows, cols) -= (G S) S^T with this rank's rows of S; C (rows, r) scratch. */
static int project(float *G, const float *S, int r, int cap, const dist_matrix *d, float *C) {
  int rows, cols, off;
  shard(d, &rows, &cols, &off);
  const backend_ops *be = backend_get();
  if (rows > 0 && cols > 0)
    GORP_CALL(be->gemm(0, 0, rows, r, cols, 1.0f, G, cols, S, cap, 0.0f, C, r));
  else
    memset(C, 0, (size_t)rows * r * sizeof(float));
  GORP_CALL(sum_split(d, C, rows * r, MPI_FLOAT));
  if (rows > 0 && cols > 0)
    GORP_CALL(be->gemm(0, 1, rows, cols, r, -1.0f, C, r, S, cap, 1.0f, G, cols));
  return GORP_OK;
}

int gorp_dist_project_cols(float *G_local, const float *S_local, int r, int cap,
                           const dist_matrix *d, float *scratch) {
  if (r == 0) return GORP_OK;
  return project(G_local, S_local, r, cap, d, scratch);
}

int gorp_dist_project_rows(float *G_local, const float *S_local, int r, int cap,
                           const dist_matrix *d, float *scratch) {
  if (r == 0) return GORP_OK;
  int rows, cols, off;
  shard(d, &rows, &cols, &off);
  const dist_matrix t = transposed(d);
  float *T = scratch; /* (cols, rows) */
  transpose(T, G_local, rows, cols);
  GORP_CALL(project(T, S_local, r, cap, &t, T + (size_t)rows * cols));
  transpose(G_local, T, cols, rows);
  return GORP_OK;
}

static double sum_squares(const float *x, size_t len) {
  double s = 0.0;
  for (size_t i = 0; i < len; i++) s += (double)x[i] * x[i];
  return s;
}

/* linalg_sign_fix on the logical vector whose entries [off, off + len) are u: the first entry of
 * largest magnitude over the whole vector is made positive. */
static int sign_fix(float *u, int len, int off, const dist_matrix *d) {
  struct {
    float abs;
    int index;
  } best = {-1.0f, 0};
  int local = -1;
  for (int i = 0; i < len; i++)
    if (fabsf(u[i]) > best.abs) { /* strict: the first of equal magnitudes wins */
      best.abs = fabsf(u[i]);
      local = i;
    }
  best.index = off + (local < 0 ? 0 : local);
  if (d->layout == DIST_COLS) /* MAXLOC keeps the lowest index among equal maxima */
    GORP_MPI(MPI_Allreduce(MPI_IN_PLACE, &best, 1, MPI_FLOAT_INT, MPI_MAXLOC, d->comm));
  const int mine = best.index >= off && best.index < off + len;
  int negative = mine && u[best.index - off] < 0.0f;
  GORP_CALL(sum_split(d, &negative, 1, MPI_INT));
  if (negative)
    for (int i = 0; i < len; i++) u[i] = -u[i];
  return GORP_OK;
}

/* gorp_basis.c's append_column on this rank's rows: u (len) is this rank's part of the candidate,
 * c (cap) scratch. *appended = 0 when u was, to float precision, inside span(S) already. */
static int append_column(float *S, int r, int cap, int len, int off, float *u, float *c,
                         const dist_matrix *d, int *appended) {
  const backend_ops *be = backend_get();
  if (r > 0) {
    if (len > 0)
      GORP_CALL(be->gemm(1, 0, r, 1, len, 1.0f, S, cap, u, 1, 0.0f, c, 1)); /* c = S^T u */
    else
      memset(c, 0, (size_t)r * sizeof(float));
    GORP_CALL(sum_split(d, c, r, MPI_FLOAT));
    if (len > 0) /* u -= S c */
      GORP_CALL(be->gemm(0, 0, len, 1, r, -1.0f, S, cap, c, 1, 1.0f, u, 1));
  }
  double ss = sum_squares(u, (size_t)len);
  GORP_CALL(sum_split(d, &ss, 1, MPI_DOUBLE));
  const double norm = sqrt(ss);
  *appended = norm >= 0.5; /* u had unit norm: most of it was in span(S), so it was noise */
  if (!*appended) return GORP_OK;
  for (int i = 0; i < len; i++) u[i] = (float)(u[i] / norm);
  GORP_CALL(sign_fix(u, len, off, d));
  for (int i = 0; i < len; i++) S[(size_t)i * cap + r] = u[i];
  return GORP_OK;
}

int gorp_dist_extend_rows(float *S_local, int *r, int cap, const float *M_local,
                          const dist_matrix *d, float energy, int *added, linalg_dist_ws *dw,
                          float *scratch) {
  int rows, cols, off;
  shard(d, &rows, &cols, &off);
  const dist_matrix t = transposed(d);
  transpose(scratch, M_local, rows, cols);
  return gorp_dist_extend_cols(S_local, r, cap, scratch, &t, energy, added, dw,
                               scratch + (size_t)rows * cols);
}

int gorp_dist_extend_cols(float *S_local, int *r, int cap, const float *M_local,
                          const dist_matrix *d, float energy, int *added, linalg_dist_ws *dw,
                          float *scratch) {
  *added = 0;
  int rows, cols, off;
  shard(d, &rows, &cols, &off);
  const int n = d->n, nv_all = imin(d->m, d->n);
  const size_t len = (size_t)rows * cols;
  float *C = scratch, *R = C + (size_t)rows * cap, *V = R + len, *sv = V + (size_t)nv_all * n,
        *u = sv + nv_all, *c = u + cols;
  /* every entry of M lies on exactly one rank of the group: its norms are sums over it */
  double norms[2] = {sum_squares(M_local, len), 0.0}; /* ||M||^2, ||R||^2 */
  GORP_MPI(MPI_Allreduce(MPI_IN_PLACE, norms, 1, MPI_DOUBLE, MPI_SUM, d->comm));
  if (!isfinite(norms[0]))
    GORP_ERR(GORP_ENUM, "gorp_dist_extend_cols: the moment (%d x %d) has a non-finite entry", d->m,
             d->n);
  if (norms[0] == 0.0 || *r == cap) return GORP_OK;
  memcpy(R, M_local, len * sizeof(float));
  if (*r > 0) GORP_CALL(project(R, S_local, *r, cap, d, C));
  norms[1] = sum_squares(R, len);
  GORP_MPI(MPI_Allreduce(MPI_IN_PLACE, norms + 1, 1, MPI_DOUBLE, MPI_SUM, d->comm));
  /* the covered share; M orthogonal to S rounds to a hair below 0, which energy 0 must not see */
  double acc = fmax(0.0, (norms[0] - norms[1]) / norms[0]);
  if (acc >= energy) return GORP_OK;
  float sigma1 = 0.0f; /* sigma_1(M), the scale of the noise threshold */
  if (*r > 0) GORP_CALL(linalg_dist_topk_right(V, &sigma1, M_local, d, 1, SVD_EXACT, NULL, dw));
  const int nv = imin(nv_all, cap - *r);
  GORP_CALL(linalg_dist_topk_right(V, sv, R, d, nv, SVD_EXACT, NULL, dw));
  if (*r == 0) sigma1 = sv[0];
  /* the energy rule of gorp_basis.h, on values and vectors every rank holds */
  for (int j = 0; j < nv && acc < energy; j++) {
    if (sv[j] <= GORP_BASIS_RANK_TOL * sigma1) break;
    memcpy(u, V + (size_t)j * n + off, (size_t)cols * sizeof(float));
    int appended;
    GORP_CALL(append_column(S_local, *r, cap, cols, off, u, c, d, &appended));
    if (!appended) break;
    (*r)++;
    (*added)++;
    acc += (double)sv[j] * sv[j] / norms[0];
  }
  return GORP_OK;
}
