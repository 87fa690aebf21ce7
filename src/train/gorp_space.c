/* GORP's shared space of one protected matrix: storage, the four-way choice of kernel behind
 * project and extend, and activation covariances (see gorp_space.h).
 * Not for: the energy rule and projections themselves (gorp_basis.c, gorp_basis_dist.c). */
#include "gorp/gorp_space.h"

#include "gorp/backend.h"
#include "gorp/err.h"
#include "gorp/gorp_basis.h"
#include "gorp/gorp_basis_dist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int gorp_space_init(gorp_space *s, int len, int cap, int n_tasks, int with_cov) {
  memset(s, 0, sizeof(*s));
  s->len = s->axis = len;
  s->cap = cap;
  GORP_ALLOC(s->S, (size_t)len * cap, "GORP basis");
  GORP_ALLOC(s->task_end, n_tasks, "GORP basis task ranges");
  if (with_cov) GORP_ALLOC(s->cov, (size_t)len * len, "input covariance");
  return GORP_OK;
}

int gorp_space_init_dist(gorp_space *s, const dist_matrix *d, int on_rows, int cap, int n_tasks,
                         int with_cov, linalg_dist_ws *dws) {
  if (with_cov) return gorp_space_init(s, cap, cap, n_tasks, 1);
  int off, rows;
  gorp_dist_basis_rows(d, on_rows, &off, &rows);
  GORP_CALL(gorp_space_init(s, rows, cap, n_tasks, 0));
  s->row_off = off;
  s->axis = on_rows ? d->m : d->n;
  return gorp_dist_reserve(dws, d, on_rows);
}

void gorp_space_free(gorp_space *s) {
  free(s->S);
  free(s->task_end);
  free(s->cov);
  memset(s, 0, sizeof(*s));
}

int gorp_space_project(const gorp_space *s, float *G, int rows, int cols, int on_cols,
                       const dist_matrix *dm, const gorp_space_ws *w) {
  if (!s->S || s->r == 0) return GORP_OK;
  if (dm) { /* the rows of S that match the shard (all of S is stored for activation bases) */
    int off, len;
    gorp_dist_basis_rows(dm, !on_cols, &off, &len);
    const float *S = s->S + (size_t)(off - s->row_off) * s->cap;
    if (on_cols) return gorp_dist_project_cols(G, S, s->r, s->cap, dm, w->scratch);
    return gorp_dist_project_rows(G, S, s->r, s->cap, dm, w->scratch);
  }
  if (on_cols) return gorp_project_cols(G, s->S, s->r, s->cap, cols, rows, w->ws);
  return gorp_project_rows(G, s->S, s->r, s->cap, rows, cols, w->ws);
}

int gorp_space_project_step(const gorp_space *s, float *W, float *before, int rows, int cols,
                            int on_cols, const dist_matrix *dm, const gorp_space_ws *w) {
  const size_t n = (size_t)rows * cols;
  for (size_t i = 0; i < n; i++) {
    const float after = W[i];
    W[i] = before[i];
    before[i] = after - before[i];
  }
  GORP_CALL(gorp_space_project(s, before, rows, cols, on_cols, dm, w));
  for (size_t i = 0; i < n; i++) W[i] += before[i];
  return GORP_OK;
}

int gorp_space_extend(gorp_space *s, const float *M, int k, int on_cols, const dist_matrix *dm,
                      float energy, int *added, const gorp_space_ws *w) {
  if (dm && on_cols)
    return gorp_dist_extend_cols(s->S, &s->r, s->cap, M, dm, energy, added, w->dws, w->scratch);
  if (dm)
    return gorp_dist_extend_rows(s->S, &s->r, s->cap, M, dm, energy, added, w->dws, w->scratch);
  if (on_cols)
    return gorp_basis_extend_cols(s->S, &s->r, s->cap, M, s->len, k, energy, added, w->ws);
  return gorp_basis_extend(s->S, &s->r, s->cap, M, s->len, k, energy, added, w->ws);
}

int gorp_space_observe(gorp_space *s, const float *X, const int *lengths, int B, int T,
                       float *rows) {
  const int in = s->len;
  int n = 0;
  for (int b = 0; b < B; b++)
    for (int t = 0; t < lengths[b]; t++)
      memcpy(rows + (size_t)n++ * in, X + ((size_t)b * T + t) * in, (size_t)in * sizeof(float));
  GORP_CALL(backend_get()->gemm(1, 0, in, in, n, 1.0f, rows, in, rows, in, 1.0f, s->cov, in));
  s->cov_rows += n;
  return GORP_OK;
}

/* M (len, len) = V diag(sqrt(lambda)) from cov / cov_rows = V diag(lambda) V^T, in double. */
static int covariance_root(float *M, const gorp_space *s) {
  const int n = s->len;
  double *A, *w;
  GORP_ALLOC(A, (size_t)n * n, "covariance eigenvectors");
  GORP_ALLOC(w, n, "covariance eigenvalues");
  const double scale = s->cov_rows ? 1.0 / (double)s->cov_rows : 1.0;
  for (size_t i = 0; i < (size_t)n * n; i++) A[i] = s->cov[i] * scale;
  const int rc = linalg_sym_eig(A, w, n);
  if (!rc)
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++)
        M[(size_t)i * n + j] = (float)(A[(size_t)i * n + j] * sqrt(w[j] > 0 ? w[j] : 0));
  free(A);
  free(w);
  return rc;
}

int gorp_space_extend_from_cov(gorp_space *s, const dist *d, float energy, int *added,
                               const gorp_space_ws *w) {
  if (d) { /* every rank saw its share of the examples */
    double rows = (double)s->cov_rows;
    GORP_CALL(dist_sum_floats(d, s->cov, (size_t)s->len * s->len));
    GORP_CALL(dist_sum_doubles(d, &rows, 1));
    s->cov_rows = (long)rows;
  }
  float *M;
  GORP_ALLOC(M, (size_t)s->len * s->len, "covariance root");
  int rc = covariance_root(M, s);
  if (!rc) rc = gorp_space_extend(s, M, s->len, 0, NULL, energy, added, w);
  free(M);
  memset(s->cov, 0, (size_t)s->len * s->len * sizeof(float));
  s->cov_rows = 0;
  return rc;
}
