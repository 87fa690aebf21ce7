/* Top-k SVD of a local matrix (see linalg.h): LAPACK sgesvd, or a randomized sketch whose products
 * go through the backend. Everything runs inside the caller's reserved workspace. Also the
 * symmetric eigendecomposition (LAPACK dsyevd).
 * Not for: distributed matrices, the GORP energy rule (gorp_basis.c). */
#include "gorp/linalg.h"

#include "linalg_lapack.h"
#include "gorp/backend.h"
#include "gorp/err.h"
#include "gorp/rng.h"

#include <lapacke.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void svd_opts_default(svd_opts *o) {
  o->oversample = 8;
  o->power_iters = 2;
  o->seed = 0;
  o->counter = 0;
}

void linalg_sign_fix(float *v, int len, int stride) {
  size_t best = 0;
  float best_abs = -1.0f;
  for (int i = 0; i < len; i++) {
    float a = fabsf(v[(size_t)i * stride]);
    if (a > best_abs) { /* strict: the first of equal magnitudes wins */
      best_abs = a;
      best = (size_t)i * stride;
    }
  }
  if (v[best] < 0.0f)
    for (int i = 0; i < len; i++) v[(size_t)i * stride] = -v[(size_t)i * stride];
}

static int check_opts(const svd_opts *o) {
  if (o->oversample < 0 || o->power_iters < 0)
    GORP_ERR(GORP_EINPUT, "randomized SVD: oversample = %d and power_iters = %d must be >= 0",
             o->oversample, o->power_iters);
  return GORP_OK;
}

static int check_shape(const char *fn, int m, int n, int k) {
  if (m < 1 || n < 1)
    GORP_ERR(GORP_EINPUT, "%s: matrix shape (%d x %d) must be positive", fn, m, n);
  if (k < 1 || k > imin(m, n))
    GORP_ERR(GORP_EINPUT,
             "%s: k = %d singular vectors asked of a (%d x %d) matrix (need 1 <= k <= %d)", fn, k,
             m, n, imin(m, n));
  return GORP_OK;
}

/* An SVD fed a NaN may not return; refuse it with the position instead. */
static int check_finite(const char *fn, const float *G, int m, int n) {
  const size_t mn = (size_t)m * n;
  for (size_t i = 0; i < mn; i++)
    if (!isfinite(G[i]))
      GORP_ERR(GORP_ENUM, "%s: non-finite entry %g at (%zu, %zu) of the (%d x %d) matrix", fn,
               (double)G[i], i / (size_t)n, i % (size_t)n, m, n);
  return GORP_OK;
}

/* Optimal lwork for the QR steps (sgeqrf then sorgqr) of a column-major rows x cols matrix. */
static int query_qr(size_t *lwork, int rows, int cols) {
  float q1 = 0.0f, q2 = 0.0f, dummy = 0.0f;
  lapack_int i1 = LAPACKE_sgeqrf_work(LAPACK_COL_MAJOR, rows, cols, &dummy, rows, &dummy, &q1, -1);
  lapack_int i2 =
      LAPACKE_sorgqr_work(LAPACK_COL_MAJOR, rows, cols, cols, &dummy, rows, &dummy, &q2, -1);
  if (i1 || i2)
    GORP_ERR(GORP_ELIB, "sgeqrf/sorgqr workspace query (%d x %d) failed: info %d/%d", rows, cols,
             (int)i1, (int)i2);
  *lwork = zmax(linalg_lwork_from(q1), linalg_lwork_from(q2));
  return GORP_OK;
}

static int sketch_cols(int m, int n, int k, const svd_opts *o) {
  long l = (long)k + o->oversample;
  return (int)(l < imin(m, n) ? l : imin(m, n));
}

/* Floats the exact path keeps besides LAPACK's work: the copy of G and the singular values. */
static size_t exact_fixed(int m, int n) {
  return (size_t)m * n + (size_t)imin(m, n);
}

/* Floats the randomized path keeps besides LAPACK's work: Yt (l, m), X (l, n), s (l), tau (l). */
static size_t randomized_fixed(int m, int n, int l) {
  return (size_t)l * m + (size_t)l * n + 2 * (size_t)l;
}

static int grow(float **buf, size_t *cap, size_t need, long *n_grow, const char *role) {
  if (need <= *cap) return GORP_OK;
  free(*buf);
  *buf = NULL;
  *cap = 0;
  GORP_ALLOC(*buf, need, role);
  *cap = need;
  (*n_grow)++;
  return GORP_OK;
}

int linalg_ws_reserve(linalg_ws *w, int m, int n, int k, const svd_opts *o) {
  svd_opts def;
  svd_opts_default(&def);
  if (!o) o = &def;
  GORP_CALL(check_shape("linalg_ws_reserve", m, n, k));
  GORP_CALL(check_opts(o));
  size_t need = 0, lw = 0;
  /* G (m, n) is the column-major n x m matrix G^T to LAPACK. */
  const int wants[] = {WANT_VALUES, WANT_LEFT, WANT_RIGHT};
  for (int i = 0; i < 3; i++) {
    GORP_CALL(linalg_query_gesvd(&lw, linalg_job_u(wants[i]), linalg_job_vt(wants[i]), n, m));
    need = zmax(need, exact_fixed(m, n) + lw);
  }
  const int l = sketch_cols(m, n, k, o);
  size_t rlw = 0;
  GORP_CALL(query_qr(&lw, m, l));
  rlw = zmax(rlw, lw);
  GORP_CALL(query_qr(&lw, n, l));
  rlw = zmax(rlw, lw);
  for (int i = 1; i < 3; i++) {
    GORP_CALL(linalg_query_gesvd(&lw, linalg_job_u(wants[i]), linalg_job_vt(wants[i]), n, l));
    rlw = zmax(rlw, lw);
  }
  need = zmax(need, randomized_fixed(m, n, l) + rlw);
  return grow(&w->work, &w->work_cap, need, &w->n_grow, "linalg SVD workspace");
}

int linalg_ws_reserve_scratch(linalg_ws *w, size_t n) {
  return grow(&w->scratch, &w->scratch_cap, n, &w->n_grow, "linalg scratch");
}

void linalg_ws_free(linalg_ws *w) {
  free(w->work);
  free(w->scratch);
  w->work = w->scratch = NULL;
  w->work_cap = w->scratch_cap = 0;
}

/* Refuses (never grows) so that the hot path provably allocates nothing. */
static int ws_check(const linalg_ws *w, size_t need, const char *fn, int m, int n, int k) {
  if (need > w->work_cap)
    GORP_ERR(GORP_EINPUT,
             "%s on a (%d x %d) matrix with k = %d needs %zu floats of workspace but %zu are "
             "reserved: call linalg_ws_reserve with this shape first",
             fn, m, n, k, need, w->work_cap);
  return GORP_OK;
}

static lapack_int lwork_left(const linalg_ws *w, size_t fixed) {
  size_t left = w->work_cap - fixed;
  return (lapack_int)(left < (size_t)INT_MAX ? left : (size_t)INT_MAX);
}

static int svd_exact(float *out, float *sv, const float *G, int m, int n, int k, int want,
                     const char *fn, linalg_ws *w) {
  const int rows = n, cols = m; /* A = G^T, column-major, lda = n */
  const size_t fixed = exact_fixed(m, n);
  GORP_CALL(ws_check(w, fixed + linalg_min_gesvd(rows, cols), fn, m, n, k));
  float *A = w->work, *s = A + (size_t)m * n, *work = s + imin(m, n), dummy = 0.0f;
  memcpy(A, G, (size_t)m * n * sizeof(float));
  lapack_int info =
      LAPACKE_sgesvd_work(LAPACK_COL_MAJOR, linalg_job_u(want), linalg_job_vt(want), rows, cols, A,
                          rows, s, &dummy, 1, &dummy, 1, work, lwork_left(w, fixed));
  GORP_CALL(linalg_gesvd_info(info, fn, m, n));
  if (sv) memcpy(sv, s, (size_t)k * sizeof(float));
  if (want == WANT_RIGHT) { /* jobu = O: A's first columns are U of G^T = right vectors of G */
    for (int j = 0; j < k; j++) {
      memcpy(out + (size_t)j * n, A + (size_t)j * rows, (size_t)n * sizeof(float));
      linalg_sign_fix(out + (size_t)j * n, n, 1);
    }
  } else if (want == WANT_LEFT) { /* jobvt = O: A's first rows are V^T of G^T = U^T of G */
    for (int i = 0; i < m; i++)
      for (int j = 0; j < k; j++) out[(size_t)i * k + j] = A[j + (size_t)i * rows];
    for (int j = 0; j < k; j++) linalg_sign_fix(out + j, m, k);
  }
  return GORP_OK;
}

/* Halko et al. Alg. 4.4: the range of G is sketched with Omega (n, l), refined by q passes of
 * G G^T with a QR after every product, and G is projected onto it: B = Qy^T G (l, n). The exact
 * SVD of the small B gives the values, its right vectors directly and the left ones as Qy Ub. */
static int svd_randomized(float *out, float *sv, const float *G, int m, int n, int k, int want,
                          const svd_opts *o, const char *fn, linalg_ws *w) {
  const int l = sketch_cols(m, n, k, o);
  const size_t fixed = randomized_fixed(m, n, l);
  const size_t min_work = linalg_min_gesvd(n, l); /* >= l, the QR steps' minimum */
  GORP_CALL(ws_check(w, fixed + min_work, fn, m, n, k));
  float *Yt = w->work;           /* (l, m): the range basis Qy, one vector per row */
  float *X = Yt + (size_t)l * m; /* (l, n): Omega^T, then the co-range, then B */
  float *s = X + (size_t)l * n;  /* (l) */
  float *tau = s + l;            /* (l) */
  float *work = tau + l, dummy = 0.0f;
  const lapack_int lwork = lwork_left(w, fixed);
  const backend_ops *be = backend_get();

  for (int j = 0; j < l; j++)
    for (int i = 0; i < n; i++)
      X[(size_t)j * n + i] =
          (float)rng_normal(o->seed, RNG_STREAM_SVD, o->counter, (uint64_t)j * n + i);
  GORP_CALL(be->gemm(0, 1, l, m, n, 1.0f, X, n, G, n, 0.0f, Yt, m)); /* Yt = Omega^T G^T */
  GORP_CALL(linalg_orthonormalise(Yt, m, l, tau, work, lwork, fn));
  for (int q = 0; q < o->power_iters; q++) {
    GORP_CALL(be->gemm(0, 0, l, n, m, 1.0f, Yt, m, G, n, 0.0f, X, n)); /* X = Qy^T G */
    GORP_CALL(linalg_orthonormalise(X, n, l, tau, work, lwork, fn));
    GORP_CALL(be->gemm(0, 1, l, m, n, 1.0f, X, n, G, n, 0.0f, Yt, m)); /* Yt = X G^T */
    GORP_CALL(linalg_orthonormalise(Yt, m, l, tau, work, lwork, fn));
  }
  /* B = Qy^T G; X is B^T column-major */
  GORP_CALL(be->gemm(0, 0, l, n, m, 1.0f, Yt, m, G, n, 0.0f, X, n));

  lapack_int info = LAPACKE_sgesvd_work(LAPACK_COL_MAJOR, linalg_job_u(want), linalg_job_vt(want),
                                        n, l, X, n, s, &dummy, 1, &dummy, 1, work, lwork);
  GORP_CALL(linalg_gesvd_info(info, fn, l, n));
  if (sv) memcpy(sv, s, (size_t)k * sizeof(float));
  if (want == WANT_RIGHT) { /* U of B^T = right vectors of B = right vectors of G */
    for (int j = 0; j < k; j++) {
      memcpy(out + (size_t)j * n, X + (size_t)j * n, (size_t)n * sizeof(float));
      linalg_sign_fix(out + (size_t)j * n, n, 1);
    }
  } else if (want == WANT_LEFT) {
    /* V^T of B^T sits in X's first l rows (lda n): X[j + t n] = Ub[t, j]. As row-major that is
     * (l, n) with Ub in the first k columns, so P = Qy Ub is Yt^T (m, l) times it. */
    GORP_CALL(be->gemm(1, 0, m, k, l, 1.0f, Yt, m, X, n, 0.0f, out, k));
    for (int j = 0; j < k; j++) linalg_sign_fix(out + j, m, k);
  }
  return GORP_OK;
}

static int topk(float *out, float *sv, const float *G, int m, int n, int k, svd_kind kind,
                const svd_opts *o, int want, const char *fn, linalg_ws *w) {
  svd_opts def;
  svd_opts_default(&def);
  if (!o) o = &def;
  GORP_CALL(check_shape(fn, m, n, k));
  GORP_CALL(check_finite(fn, G, m, n));
  if (kind == SVD_EXACT) {
    GORP_CALL(svd_exact(out, sv, G, m, n, k, want, fn, w));
    return GORP_OK;
  }
  if (kind == SVD_RANDOMIZED) {
    GORP_CALL(check_opts(o));
    GORP_CALL(svd_randomized(out, sv, G, m, n, k, want, o, fn, w));
    return GORP_OK;
  }
  GORP_ERR(GORP_EINPUT, "%s: unknown SVD kind %d", fn, (int)kind);
}

int linalg_topk_right(float *Q, float *sv, const float *G, int m, int n, int k, svd_kind kind,
                      const svd_opts *o, linalg_ws *w) {
  return topk(Q, sv, G, m, n, k, kind, o, WANT_RIGHT, "linalg_topk_right", w);
}

int linalg_topk_left(float *P, float *sv, const float *G, int m, int n, int k, svd_kind kind,
                     const svd_opts *o, linalg_ws *w) {
  return topk(P, sv, G, m, n, k, kind, o, WANT_LEFT, "linalg_topk_left", w);
}

int linalg_topk_values(float *sv, const float *G, int m, int n, int k, linalg_ws *w) {
  return topk(NULL, sv, G, m, n, k, SVD_EXACT, NULL, WANT_VALUES, "linalg_topk_values", w);
}

int linalg_sym_eig(double *A, double *w, int n) {
  const lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', n, A, n, w);
  if (info)
    GORP_ERR(GORP_ENUM, "eigendecomposition of a %d x %d symmetric matrix failed (info %d)", n, n,
             (int)info);
  return GORP_OK;
}
