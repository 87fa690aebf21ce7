/* GORP shared basis (see gorp_basis.h): the energy-rule extension after a task and the one-sided
 * projections while learning. Products go through the backend, SVDs through linalg, scratch comes
 * from the caller's reserved workspace.
 * Not for: deciding what to protect, checkpointing S, sharded moments (gorp_basis_dist.c). */
#include "gorp/gorp_basis.h"
#include "gorp/backend.h"
#include "gorp/err.h"

#include <math.h>
#include <string.h>

static int imin(int a, int b) {
  return a < b ? a : b;
}

static int check_basis(const char *fn, int r, int cap, int n, int k) {
  if (n < 1 || k < 1) GORP_ERR(GORP_EINPUT, "%s: shape n = %d, k = %d must be positive", fn, n, k);
  if (cap < 1 || cap > n)
    GORP_ERR(GORP_EINPUT, "%s: basis capacity %d must be in [1, n = %d]", fn, cap, n);
  if (r < 0 || r > cap)
    GORP_ERR(GORP_EINPUT, "%s: basis uses %d columns, must be in [0, cap = %d]", fn, r, cap);
  return GORP_OK;
}

static int check_scratch(const linalg_ws *w, size_t need, const char *fn, int n, int k, int cap) {
  if (need > w->scratch_cap)
    GORP_ERR(GORP_EINPUT,
             "%s (n = %d, k = %d, cap = %d) needs %zu floats of scratch but %zu are reserved: "
             "call gorp_basis_reserve with this shape first",
             fn, n, k, cap, need, w->scratch_cap);
  return GORP_OK;
}

/* Extension scratch: C (cap, k), R (n, k), V (n, min(n, k)), sv (min(n, k)), u (n), c (cap). */
static size_t extend_scratch(int n, int k, int cap) {
  const size_t kk = (size_t)imin(n, k);
  return (size_t)cap * k + (size_t)n * k + (size_t)n * kk + kk + (size_t)n + (size_t)cap;
}

int gorp_basis_reserve(linalg_ws *w, int n, int k, int cap) {
  GORP_CALL(check_basis("gorp_basis_reserve", 0, cap, n, k));
  const int kk = imin(n, k);
  GORP_CALL(linalg_ws_reserve(w, n, k, kk, NULL));
  GORP_CALL(linalg_ws_reserve(w, k, n, kk, NULL));
  GORP_CALL(linalg_ws_reserve_scratch(w, extend_scratch(n, k, cap)));
  return GORP_OK;
}

/* R (n, k) -= S (S^T R) with C (r, k) as scratch. */
static int project_rows(float *R, const float *S, int r, int cap, int n, int k, float *C) {
  const backend_ops *be = backend_get();
  GORP_CALL(be->gemm(1, 0, r, k, n, 1.0f, S, cap, R, k, 0.0f, C, k));
  GORP_CALL(be->gemm(0, 0, n, k, r, -1.0f, S, cap, C, k, 1.0f, R, k));
  return GORP_OK;
}

/* R (k, n) -= (R S) S^T with C (k, r) as scratch. */
static int project_cols(float *R, const float *S, int r, int cap, int n, int k, float *C) {
  const backend_ops *be = backend_get();
  GORP_CALL(be->gemm(0, 0, k, r, n, 1.0f, R, n, S, cap, 0.0f, C, r));
  GORP_CALL(be->gemm(0, 1, k, n, r, -1.0f, C, r, S, cap, 1.0f, R, n));
  return GORP_OK;
}

int gorp_project_rows(float *R, const float *S, int r, int cap, int n, int k, linalg_ws *w) {
  GORP_CALL(check_basis("gorp_project_rows", r, cap, n, k));
  if (r == 0) return GORP_OK;
  GORP_CALL(check_scratch(w, (size_t)r * k, "gorp_project_rows", n, k, cap));
  return project_rows(R, S, r, cap, n, k, w->scratch);
}

int gorp_project_cols(float *R, const float *S, int r, int cap, int n, int k, linalg_ws *w) {
  GORP_CALL(check_basis("gorp_project_cols", r, cap, n, k));
  if (r == 0) return GORP_OK;
  GORP_CALL(check_scratch(w, (size_t)k * r, "gorp_project_cols", n, k, cap));
  return project_cols(R, S, r, cap, n, k, w->scratch);
}

static double sum_squares(const float *x, size_t len) {
  double s = 0.0;
  for (size_t i = 0; i < len; i++) s += (double)x[i] * x[i];
  return s;
}

/* Appends u (n) as column r of S after one classical Gram-Schmidt pass against columns 0..r-1 and
 * normalisation; c (cap) is scratch. *appended = 0 (and nothing is appended) when u is, to float
 * precision, inside span(S) already. u is a contiguous copy (not a strided view of S) so that
 * every backend product reads whole rows of its operands. */
static int append_column(float *S, int r, int cap, int n, float *u, float *c, int *appended) {
  const backend_ops *be = backend_get();
  if (r > 0) {
    GORP_CALL(be->gemm(1, 0, r, 1, n, 1.0f, S, cap, u, 1, 0.0f, c, 1));  /* c = S^T u */
    GORP_CALL(be->gemm(0, 0, n, 1, r, -1.0f, S, cap, c, 1, 1.0f, u, 1)); /* u -= S c */
  }
  const double norm = sqrt(sum_squares(u, (size_t)n));
  *appended = norm >= 0.5; /* u had unit norm: most of it was in span(S), so it was noise */
  if (!*appended) return GORP_OK;
  for (int i = 0; i < n; i++) u[i] = (float)(u[i] / norm);
  linalg_sign_fix(u, n, 1);
  for (int i = 0; i < n; i++) S[(size_t)i * cap + r] = u[i];
  return GORP_OK;
}

/* cols = 0: M (n, k), protected axis rows. cols = 1: M (k, n), protected axis columns. */
static int extend(float *S, int *r, int cap, const float *M, int n, int k, float energy, int *added,
                  int cols, const char *fn, linalg_ws *w) {
  *added = 0;
  GORP_CALL(check_basis(fn, *r, cap, n, k));
  if (!(energy >= 0.0f && energy <= 1.0f))
    GORP_ERR(GORP_EINPUT, "%s: energy = %g must be in [0, 1] (gorp.energy)", fn, (double)energy);
  GORP_CALL(check_scratch(w, extend_scratch(n, k, cap), fn, n, k, cap));
  const int kk = imin(n, k);
  float *C = w->scratch;          /* (cap, k) or (k, cap) */
  float *R = C + (size_t)cap * k; /* (n, k) or (k, n) */
  float *V = R + (size_t)n * k;   /* (n, kk) or (kk, n) */
  float *sv = V + (size_t)n * kk; /* (kk) */
  float *u = sv + kk;             /* (n) */
  float *c = u + n;               /* (cap) */
  const size_t len = (size_t)n * k;

  const double m2 = sum_squares(M, len);
  if (!isfinite(m2))
    GORP_ERR(GORP_ENUM, "%s: the moment (%d x %d) has a non-finite entry", fn, cols ? k : n,
             cols ? n : k);
  if (m2 == 0.0 || *r == cap) return GORP_OK;

  memcpy(R, M, len * sizeof(float));
  if (*r > 0) {
    if (cols)
      GORP_CALL(project_cols(R, S, *r, cap, n, k, C));
    else
      GORP_CALL(project_rows(R, S, *r, cap, n, k, C));
  }
  /* the covered share; M orthogonal to S rounds to a hair below 0, which energy 0 must not see */
  double acc = fmax(0.0, (m2 - sum_squares(R, len)) / m2);
  if (acc >= energy) return GORP_OK;

  float sigma1 = 0.0f; /* sigma_1(M), the scale of the noise threshold */
  if (*r > 0) {
    if (cols)
      GORP_CALL(linalg_topk_values(&sigma1, M, k, n, 1, w));
    else
      GORP_CALL(linalg_topk_values(&sigma1, M, n, k, 1, w));
  }
  const int nv = imin(kk, cap - *r);
  if (cols)
    GORP_CALL(linalg_topk_right(V, sv, R, k, n, nv, SVD_EXACT, NULL, w));
  else
    GORP_CALL(linalg_topk_left(V, sv, R, n, k, nv, SVD_EXACT, NULL, w));
  if (*r == 0) sigma1 = sv[0];

  for (int j = 0; j < nv && acc < energy; j++) {
    if (sv[j] <= GORP_BASIS_RANK_TOL * sigma1) break;
    for (int i = 0; i < n; i++) u[i] = cols ? V[(size_t)j * n + i] : V[(size_t)i * nv + j];
    int appended;
    GORP_CALL(append_column(S, *r, cap, n, u, c, &appended));
    if (!appended) break;
    (*r)++;
    (*added)++;
    acc += (double)sv[j] * sv[j] / m2;
  }
  return GORP_OK;
}

int gorp_basis_extend(float *S, int *r, int cap, const float *M, int n, int k, float energy,
                      int *added, linalg_ws *w) {
  GORP_CALL(extend(S, r, cap, M, n, k, energy, added, 0, "gorp_basis_extend", w));
  return GORP_OK;
}

int gorp_basis_extend_cols(float *S, int *r, int cap, const float *M, int n, int k, float energy,
                           int *added, linalg_ws *w) {
  GORP_CALL(extend(S, r, cap, M, n, k, energy, added, 1, "gorp_basis_extend_cols", w));
  return GORP_OK;
}
