/* linalg (top-k SVD, exact and randomized) and gorp_basis (energy rule, projections) against
 * independent constructions: G = U diag(s) V^T with U, V orthonormal from a double-precision QR of
 * Gaussian matrices and a chosen spectrum, so the expected vectors and values are known exactly
 * and never come from the code under test. Checks in double.
 *
 * Tolerances: float32 SVD of a matrix with relative gaps >= 15% between the checked singular
 * values gives vectors within ~1e-6 (|dot| - 1 ~ 1e-12) and values within a few eps * sigma_1, so
 * 1 - 1e-5 on dots and 1e-4 relative on values (TOOLCHAIN.md: keep float tolerances >= 1e-4) leave
 * a wide margin yet catch a wrong vector (dot ~0) or a swapped order (dot ~0). The randomized SVD
 * with p = 8, q = 2 on a spectrum decaying by 0.7 has a theoretical error of ~(0.7^9)^5 ~ 1e-7,
 * so 1e-3 relative on values and 1e-4 on subspace sines are generous for float noise. */
#define _GNU_SOURCE /* dladdr */
#include "gorp/gorp_basis.h"
#include "gorp/linalg.h"
#include "gorp/proc.h"
#include "gorp/rng.h"

#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Counts every malloc/calloc/realloc in the process and keeps the callers' addresses (no
 * allocation inside the hook), to show that our SVD and basis code allocates nothing after the
 * reserve. OpenBLAS 0.3.21 itself mallocs inside some GEMMs (the AVX-512 small-matrix kernels
 * and the multi-threaded driver's job array) and no caller can prevent that, so allocations whose
 * caller lies in libopenblas are reported but not failed. Under AddressSanitizer the allocator
 * belongs to ASan; there only the workspace pointer/capacity check runs. */
#if defined(__SANITIZE_ADDRESS__)
#define COUNT_MALLOC 0
#else
#define COUNT_MALLOC 1
#include <dlfcn.h>
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
static int malloc_watch;
static long n_malloc_calls;
static void *malloc_callers[4096];
static void note_caller(void *ret) {
  if (!__atomic_load_n(&malloc_watch, __ATOMIC_RELAXED)) return;
  long i = __atomic_fetch_add(&n_malloc_calls, 1, __ATOMIC_RELAXED);
  if (i < 4096) malloc_callers[i] = ret;
}
void *malloc(size_t n) {
  note_caller(__builtin_return_address(0));
  return __libc_malloc(n);
}
void *calloc(size_t a, size_t b) {
  note_caller(__builtin_return_address(0));
  return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n) {
  note_caller(__builtin_return_address(0));
  return __libc_realloc(p, n);
}
#endif

static int n_pass, n_fail;

static void check(const char *name, int ok, const char *fmt, double value) {
  printf("%s %-72s ", ok ? "PASS" : "FAIL", name);
  printf(fmt, value);
  printf("\n");
  ok ? n_pass++ : n_fail++;
}

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size);
  if (!p) {
    fprintf(stderr, "test_linalg: out of memory\n");
    exit(2);
  }
  return p;
}

/* U (rows, cols) with orthonormal columns: Householder QR (double) of a Gaussian matrix. */
static double *rand_orthonormal(int rows, int cols, uint64_t key) {
  double *A = xcalloc((size_t)rows * cols, sizeof(double)); /* column-major rows x cols */
  double *tau = xcalloc((size_t)cols, sizeof(double));
  for (size_t i = 0; i < (size_t)rows * cols; i++) A[i] = rng_normal(11, 77, key, i);
  if (LAPACKE_dgeqrf(LAPACK_COL_MAJOR, rows, cols, A, rows, tau) ||
      LAPACKE_dorgqr(LAPACK_COL_MAJOR, rows, cols, cols, A, rows, tau)) {
    fprintf(stderr, "test_linalg: reference QR failed\n");
    exit(2);
  }
  double *U = xcalloc((size_t)rows * cols, sizeof(double)); /* row-major (rows, cols) */
  for (int i = 0; i < rows; i++)
    for (int j = 0; j < cols; j++) U[(size_t)i * cols + j] = A[i + (size_t)j * rows];
  free(A);
  free(tau);
  return U;
}

/* G (m, n) = U (m, r) diag(s) V (n, r)^T, summed in double, rounded once. */
static float *build(const double *U, const double *s, const double *V, int m, int n, int r) {
  float *G = xcalloc((size_t)m * n, sizeof(float));
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double acc = 0.0;
      for (int t = 0; t < r; t++) acc += U[(size_t)i * r + t] * s[t] * V[(size_t)j * r + t];
      G[(size_t)i * n + j] = (float)acc;
    }
  return G;
}

/* Column j of X (len, cols) row-major, signed by the convention (first largest |entry| > 0). */
static void ref_column(double *out, const double *X, int len, int cols, int j) {
  int best = 0;
  for (int i = 0; i < len; i++) {
    out[i] = X[(size_t)i * cols + j];
    if (fabs(out[i]) > fabs(out[best])) best = i;
  }
  if (out[best] < 0)
    for (int i = 0; i < len; i++) out[i] = -out[i];
}

/* sum_i a[i * stride] b[i] */
static double dotf(const float *a, int stride, const double *b, int len) {
  double s = 0.0;
  for (int i = 0; i < len; i++) s += a[(size_t)i * stride] * b[i];
  return s;
}

/* 1 when the first largest-magnitude entry of v (len, stride) is positive. */
static int sign_ok(const float *v, int len, int stride) {
  int best = 0;
  for (int i = 1; i < len; i++)
    if (fabsf(v[(size_t)i * stride]) > fabsf(v[(size_t)best * stride])) best = i;
  return v[(size_t)best * stride] > 0.0f;
}

static long sign_checked, sign_bad;
static void count_signs(const float *X, int len, int count, int stride_vec, int stride_elem) {
  for (int j = 0; j < count; j++) {
    sign_checked++;
    if (!sign_ok(X + (size_t)j * stride_vec, len, stride_elem)) sign_bad++;
  }
}

/* Right vectors Q (k, n) and left vectors P (m, k) as (k, len) views: vector j starts at
 * j * stride_vec and steps by stride_elem. */
typedef struct vecs {
  const float *x;
  int len, stride_vec, stride_elem;
} vecs;
static vecs rows_of(const float *Q, int n) {
  return (vecs){Q, n, n, 1};
}
static vecs cols_of(const float *P, int m, int k) {
  return (vecs){P, m, 1, k};
}

/* Bound on the sines of the principal angles between span(a) and span(b) (k vectors each):
 * ||B - A (A^T B)||_F >= sin of the largest angle. Measured on the residual, not as
 * sqrt(1 - cos^2), because float vectors have norms 1 +- 1e-7, which the cosine form would turn
 * into a spurious sine of ~5e-4. */
static double subspace_sine(vecs a, vecs b, int k) {
  double *c = xcalloc((size_t)k, sizeof(double)), res2 = 0.0;
#define AT(v, j, t) ((double)(v).x[(size_t)(j) * (v).stride_vec + (size_t)(t) * (v).stride_elem])
  for (int j = 0; j < k; j++) {
    for (int i = 0; i < k; i++) {
      c[i] = 0.0;
      for (int t = 0; t < a.len; t++) c[i] += AT(a, i, t) * AT(b, j, t);
    }
    for (int t = 0; t < a.len; t++) {
      double d = AT(b, j, t);
      for (int i = 0; i < k; i++) d -= AT(a, i, t) * c[i];
      res2 += d * d;
    }
  }
#undef AT
  free(c);
  return sqrt(res2);
}

/* ---- (a) + (c): exact top-k against the constructed U, V, s ---- */
static void test_exact_shape(int m, int n, int k, uint64_t key, linalg_ws *w) {
  const int mn = m < n ? m : n;
  double *U = rand_orthonormal(m, mn, key), *V = rand_orthonormal(n, mn, key + 1000);
  double *s = xcalloc((size_t)mn, sizeof(double)), *ref = xcalloc((size_t)(m > n ? m : n), 8);
  for (int t = 0; t < mn; t++) s[t] = 10.0 * pow(0.8, t);
  float *G = build(U, s, V, m, n, mn);
  float *Q = xcalloc((size_t)k * n, sizeof(float)), *P = xcalloc((size_t)m * k, sizeof(float));
  float *sq = xcalloc((size_t)k, sizeof(float)), *sp = xcalloc((size_t)k, sizeof(float));
  int rc = linalg_ws_reserve(w, m, n, k, NULL);
  rc |= linalg_topk_right(Q, sq, G, m, n, k, SVD_EXACT, NULL, w);
  rc |= linalg_topk_left(P, sp, G, m, n, k, SVD_EXACT, NULL, w);
  double worst_v = 1.0, worst_u = 1.0, worst_s = 0.0;
  for (int j = 0; j < k; j++) {
    ref_column(ref, V, n, mn, j);
    worst_v = fmin(worst_v, dotf(Q + (size_t)j * n, 1, ref, n));
    ref_column(ref, U, m, mn, j);
    worst_u = fmin(worst_u, dotf(P + j, k, ref, m));
    worst_s = fmax(worst_s, fabs(sq[j] - s[j]) / s[j]);
    worst_s = fmax(worst_s, fabs(sp[j] - s[j]) / s[j]);
  }
  count_signs(Q, n, k, n, 1);
  count_signs(P, m, k, 1, k);
  char name[128];
  snprintf(name, sizeof name, "exact %dx%d k=%d: right vectors = constructed V, signed", m, n, k);
  check(name, !rc && worst_v > 1 - 1e-5, "min dot %.9f", worst_v);
  snprintf(name, sizeof name, "exact %dx%d k=%d: left vectors = constructed U, signed", m, n, k);
  check(name, !rc && worst_u > 1 - 1e-5, "min dot %.9f", worst_u);
  snprintf(name, sizeof name, "exact %dx%d k=%d: singular values within 1e-4 relative", m, n, k);
  check(name, !rc && worst_s < 1e-4, "max rel err %.2e", worst_s);
  free(U), free(V), free(s), free(ref), free(G), free(Q), free(P), free(sq), free(sp);
}

/* ---- (b) + (c): randomized against exact on a decaying spectrum; determinism ---- */
static void test_randomized_shape(int m, int n, int k, uint64_t key, linalg_ws *w) {
  const int mn = m < n ? m : n;
  double *U = rand_orthonormal(m, mn, key), *V = rand_orthonormal(n, mn, key + 1000);
  double *s = xcalloc((size_t)mn, sizeof(double));
  for (int t = 0; t < mn; t++) s[t] = pow(0.7, t);
  float *G = build(U, s, V, m, n, mn);
  float *Qe = xcalloc((size_t)k * n, 4), *Qr = xcalloc((size_t)k * n, 4);
  float *Pe = xcalloc((size_t)m * k, 4), *Pr = xcalloc((size_t)m * k, 4);
  float *Pr2 = xcalloc((size_t)m * k, 4), *Pr3 = xcalloc((size_t)m * k, 4);
  float *se = xcalloc((size_t)k, 4), *sr = xcalloc((size_t)k, 4), *sl = xcalloc((size_t)k, 4);
  svd_opts o;
  svd_opts_default(&o);
  o.seed = 1234;
  o.counter = key;
  int rc = linalg_ws_reserve(w, m, n, k, &o);
  rc |= linalg_topk_right(Qe, se, G, m, n, k, SVD_EXACT, NULL, w);
  rc |= linalg_topk_left(Pe, NULL, G, m, n, k, SVD_EXACT, NULL, w);
  rc |= linalg_topk_right(Qr, sr, G, m, n, k, SVD_RANDOMIZED, &o, w);
  rc |= linalg_topk_left(Pr, sl, G, m, n, k, SVD_RANDOMIZED, &o, w);
  rc |= linalg_topk_left(Pr2, NULL, G, m, n, k, SVD_RANDOMIZED, &o, w);
  o.counter++;
  rc |= linalg_topk_left(Pr3, NULL, G, m, n, k, SVD_RANDOMIZED, &o, w);
  double worst_s = 0.0, worst_dot = 1.0;
  for (int j = 0; j < k; j++) {
    worst_s = fmax(worst_s, fabs(sr[j] - se[j]) / se[j]);
    worst_s = fmax(worst_s, fabs(sl[j] - se[j]) / se[j]);
    double dq = 0.0, dp = 0.0;
    for (int i = 0; i < n; i++) dq += (double)Qe[(size_t)j * n + i] * Qr[(size_t)j * n + i];
    for (int i = 0; i < m; i++) dp += (double)Pe[(size_t)i * k + j] * Pr[(size_t)i * k + j];
    worst_dot = fmin(worst_dot, fmin(dq, dp));
  }
  const double sin_r = subspace_sine(rows_of(Qe, n), rows_of(Qr, n), k);
  const double sin_l = subspace_sine(cols_of(Pe, m, k), cols_of(Pr, m, k), k);
  const double sin_3 = subspace_sine(cols_of(Pe, m, k), cols_of(Pr3, m, k), k);
  count_signs(Qr, n, k, n, 1);
  count_signs(Pr, m, k, 1, k);
  char name[128];
  snprintf(name, sizeof name, "randomized %dx%d k=%d: values within 1e-3 of exact", m, n, k);
  check(name, !rc && worst_s < 1e-3, "max rel err %.2e", worst_s);
  snprintf(name, sizeof name, "randomized %dx%d k=%d: principal-angle sines < 1e-4, right", m, n,
           k);
  check(name, !rc && sin_r < 1e-4, "sin %.2e", sin_r);
  snprintf(name, sizeof name, "randomized %dx%d k=%d: principal-angle sines < 1e-4, left", m, n, k);
  check(name, !rc && sin_l < 1e-4, "sin %.2e", sin_l);
  snprintf(name, sizeof name, "randomized %dx%d k=%d: each vector = exact one, same sign", m, n, k);
  check(name, !rc && worst_dot > 1 - 1e-5, "min dot %.9f", worst_dot);
  snprintf(name, sizeof name, "randomized %dx%d k=%d: same seed+counter is bitwise repeatable", m,
           n, k);
  check(name, !rc && !memcmp(Pr, Pr2, (size_t)m * k * 4), "%g", 0.0);
  snprintf(name, sizeof name, "randomized %dx%d k=%d: another counter, same subspace", m, n, k);
  check(name, !rc && sin_3 < 1e-4, "sin %.2e", sin_3);
  free(U), free(V), free(s), free(G), free(Qe), free(Qr), free(Pe), free(Pr), free(Pr2);
  free(Pr3), free(se), free(sr), free(sl);
}

/* The seed reaches the test matrix: without power iterations two seeds round differently. */
static void test_randomized_draws_differ(linalg_ws *w) {
  const int m = 300, n = 40, k = 4;
  double *U = rand_orthonormal(m, n, 501), *V = rand_orthonormal(n, n, 502);
  double s[40];
  for (int t = 0; t < n; t++) s[t] = pow(0.7, t);
  float *G = build(U, s, V, m, n, n);
  float *A = xcalloc((size_t)m * k, 4), *B = xcalloc((size_t)m * k, 4);
  svd_opts o;
  svd_opts_default(&o);
  o.power_iters = 0; /* no refinement: the draw shows in the rounding */
  int rc = linalg_ws_reserve(w, m, n, k, &o);
  rc |= linalg_topk_left(A, NULL, G, m, n, k, SVD_RANDOMIZED, &o, w);
  o.seed = 99;
  rc |= linalg_topk_left(B, NULL, G, m, n, k, SVD_RANDOMIZED, &o, w);
  check("randomized: another seed draws another test matrix (results differ in bits)",
        !rc && memcmp(A, B, (size_t)m * k * 4) != 0, "%g", 0.0);
  free(U), free(V), free(G), free(A), free(B);
}

/* ---- (c): the tie rule of the sign convention ---- */
static void test_sign_ties(void) {
  float a[3] = {-0.5f, 0.5f, 0.1f}, b[3] = {0.5f, -0.5f, 0.1f};
  float c[6] = {9, -0.25f, 9, 0.25f, 9, 0.1f}; /* stride 2 over the odd entries */
  linalg_sign_fix(a, 3, 1);
  linalg_sign_fix(b, 3, 1);
  linalg_sign_fix(c + 1, 3, 2);
  check("sign tie: the first of equal |entries| decides (negated)",
        a[0] == 0.5f && a[1] == -0.5f && a[2] == -0.1f, "%g", 0.0);
  check("sign tie: the first of equal |entries| decides (kept)",
        b[0] == 0.5f && b[1] == -0.5f && b[2] == 0.1f, "%g", 0.0);
  check("sign fix with a stride touches only the strided entries",
        c[1] == 0.25f && c[3] == -0.25f && c[5] == -0.1f && c[0] == 9 && c[2] == 9 && c[4] == 9,
        "%g", 0.0);
}

/* ---- errors ---- */
static void test_errors(linalg_ws *w) {
  float G[6 * 4] = {0}, Q[5 * 4], P[6 * 5], sv[5];
  int rc = linalg_ws_reserve(w, 6, 4, 4, NULL);
  printf("     (the next lines until 'end of expected errors' are expected error messages)\n");
  check("k = 5 > min(6, 4) is refused (right)",
        rc == 0 && linalg_topk_right(Q, sv, G, 6, 4, 5, SVD_EXACT, NULL, w) != 0, "%g", 0.0);
  check("k = 5 > min(6, 4) is refused (left, randomized)",
        linalg_topk_left(P, sv, G, 6, 4, 5, SVD_RANDOMIZED, NULL, w) != 0, "%g", 0.0);
  check("k = 0 is refused", linalg_topk_left(P, sv, G, 6, 4, 0, SVD_EXACT, NULL, w) != 0, "%g", 0.);
  G[7] = NAN;
  check("a NaN entry is refused as a numerical error",
        linalg_topk_left(P, sv, G, 6, 4, 2, SVD_EXACT, NULL, w) == 6 /* GORP_ENUM */, "%g", 0.0);
  linalg_ws small = {0};
  float *big = xcalloc(400 * 300, 4);
  rc = linalg_ws_reserve(&small, 10, 10, 4, NULL);
  const long grows = small.n_grow;
  check("a shape bigger than reserved is refused, not grown",
        rc == 0 && linalg_topk_left(big, sv, big, 400, 300, 4, SVD_EXACT, NULL, &small) != 0 &&
            small.n_grow == grows,
        "%g", 0.0);
  float S[4] = {0}, M[4] = {1, 2, 3, 4};
  int r = 0, added = 0;
  check("energy 1.5 is refused",
        gorp_basis_extend(S, &r, 2, M, 2, 2, 1.5f, &added, w) != 0 && r == 0, "%g", 0.0);
  printf("     (end of expected errors)\n");
  linalg_ws_free(&small);
  free(big);
}

/* ---- (d): the energy rule ---- */

/* min over new columns j of the signed dot between S[:, j] and the constructed U[:, t0 + j]. */
static double basis_vs_ref(const float *S, int cap, int n, const double *U, int cols, int first,
                           int count, int t0) {
  double worst = 1.0, *ref = xcalloc((size_t)n, sizeof(double));
  for (int j = 0; j < count; j++) {
    ref_column(ref, U, n, cols, t0 + j);
    worst = fmin(worst, dotf(S + first + j, cap, ref, n));
  }
  free(ref);
  return worst;
}

static double orthonormality_error(const float *S, int cap, int n, int r) {
  double worst = 0.0;
  for (int a = 0; a < r; a++)
    for (int b = 0; b <= a; b++) {
      double d = 0.0;
      for (int i = 0; i < n; i++) d += (double)S[(size_t)i * cap + a] * S[(size_t)i * cap + b];
      worst = fmax(worst, fabs(d - (a == b)));
    }
  return worst;
}

/* Share of ||M||^2 (M (n, k)) captured by the first r columns of S, in double. */
static double captured(const float *S, int cap, int r, const float *M, int n, int k) {
  double m2 = 0.0, c2 = 0.0;
  for (size_t i = 0; i < (size_t)n * k; i++) m2 += (double)M[i] * M[i];
  for (int a = 0; a < r; a++)
    for (int j = 0; j < k; j++) {
      double d = 0.0;
      for (int i = 0; i < n; i++) d += (double)S[(size_t)i * cap + a] * M[(size_t)i * k + j];
      c2 += d * d;
    }
  return c2 / m2;
}

static void transpose(float *out, const float *in, int rows, int cols) {
  for (int i = 0; i < rows; i++)
    for (int j = 0; j < cols; j++) out[(size_t)j * rows + i] = in[(size_t)i * cols + j];
}

static void test_energy_rule(void) {
  /* M (64, 6) of rank 4 with singular values 4, 2, 1, 0.5: ||M||^2 = 16 + 4 + 1 + 0.25 = 21.25.
   * Shares after 1, 2, 3, 4 vectors: 16/21.25 = 0.7529, 20/21.25 = 0.9412, 21/21.25 = 0.9882,
   * 1. So energy 0.9 keeps 2, 0.95 keeps 3, 0.5 keeps 1, 1.0 keeps 4 (then sigma_5 ~ 0 stops it),
   * 0 keeps none. */
  const int n = 64, k = 6, cap = 64;
  double *U = rand_orthonormal(n, 4, 301), *V = rand_orthonormal(k, 4, 302);
  const double s[4] = {4, 2, 1, 0.5};
  float *M = build(U, s, V, n, k, 4), *Mt = xcalloc((size_t)n * k, 4);
  transpose(Mt, M, n, k);
  float *S = xcalloc((size_t)n * cap, 4), *S2 = xcalloc((size_t)n * cap, 4);
  linalg_ws w = {0};
  int rc = gorp_basis_reserve(&w, n, k, cap), r, added;

  const float energies[] = {0.9f, 0.95f, 0.5f, 1.0f, 0.0f};
  const int want[] = {2, 3, 1, 4, 0};
  for (int e = 0; e < 5; e++) {
    char name[128];
    memset(S, 0, (size_t)n * cap * 4);
    r = 0;
    rc |= gorp_basis_extend(S, &r, cap, M, n, k, energies[e], &added, &w);
    double d = basis_vs_ref(S, cap, n, U, 4, 0, r, 0);
    snprintf(name, sizeof name, "first task, spectrum 4,2,1,.5, energy %.2f: adds the leading %d",
             energies[e], want[e]);
    check(name, !rc && added == want[e] && r == want[e] && (r == 0 || d > 1 - 1e-5), "added %g",
          added);
    memset(S2, 0, (size_t)n * cap * 4);
    r = 0;
    rc |= gorp_basis_extend_cols(S2, &r, cap, Mt, n, k, energies[e], &added, &w);
    snprintf(name, sizeof name, "  same on the columns of M^T (extend_cols), energy %.2f",
             energies[e]);
    double diff = 0.0;
    for (size_t i = 0; i < (size_t)n * cap; i++) diff = fmax(diff, fabs(S[i] - S2[i]));
    check(name, !rc && added == want[e] && diff < 1e-5, "max |S - S'| %.1e", diff);
  }

  /* second task inside span(S) */
  memset(S, 0, (size_t)n * cap * 4);
  r = 0;
  rc |= gorp_basis_extend(S, &r, cap, M, n, k, 0.9f, &added, &w);
  memcpy(S2, S, (size_t)n * cap * 4);
  float *M2 = xcalloc((size_t)n * k, 4);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < k; j++)
      M2[(size_t)i * k + j] = S[(size_t)i * cap] * (float)rng_normal(5, 6, 0, j) +
                              S[(size_t)i * cap + 1] * (float)rng_normal(5, 6, 1, j);
  const int r0 = r;
  rc |= gorp_basis_extend(S, &r, cap, M2, n, k, 0.9f, &added, &w);
  check("second task with a moment in span(S) adds nothing, S untouched (energy 0.9)",
        !rc && added == 0 && r == r0 && !memcmp(S, S2, (size_t)n * cap * 4), "added %g", added);
  rc |= gorp_basis_extend(S, &r, cap, M2, n, k, 1.0f, &added, &w);
  check("  ... even at energy 1 (the residual is float noise < 1e-6 sigma_1)",
        !rc && added == 0 && r == r0, "added %g", added);

  /* partially covered: S holds u1 only (energy 0.5 on the first task), share 0.7529 */
  const float pe[] = {0.9f, 0.95f};
  const int pwant[] = {1, 2};
  for (int e = 0; e < 2; e++) {
    char name[128];
    memset(S, 0, (size_t)n * cap * 4);
    r = 0;
    rc |= gorp_basis_extend(S, &r, cap, M, n, k, 0.5f, &added, &w);
    rc |= gorp_basis_extend(S, &r, cap, M, n, k, pe[e], &added, &w);
    double d = basis_vs_ref(S, cap, n, U, 4, 1, added, 1);
    snprintf(name, sizeof name,
             "partly covered (S = u1, share .7529), energy %.2f: adds %d = u2..u%d", pe[e],
             pwant[e], pwant[e] + 1);
    check(name, !rc && added == pwant[e] && r == 1 + pwant[e] && d > 1 - 1e-5, "added %g", added);
  }

  /* zero moment */
  float *Z = xcalloc((size_t)n * k, 4);
  r = 0;
  rc |= gorp_basis_extend(S, &r, cap, Z, n, k, 0.9f, &added, &w);
  check("zero moment adds nothing (r = 0)", !rc && added == 0 && r == 0, "added %g", added);
  r = 2;
  rc |= gorp_basis_extend(S, &r, cap, Z, n, k, 0.9f, &added, &w);
  check("zero moment adds nothing (r = 2)", !rc && added == 0 && r == 2, "added %g", added);
  free(U), free(V), free(M), free(Mt), free(S), free(S2), free(M2), free(Z);
  linalg_ws_free(&w);
}

static void test_energy_cap(void) {
  /* n = 6, a full-rank Gaussian (6, 10) moment at energy 1: every direction is needed, so the
   * basis fills to r = n = 6 and stops; with cap = 3 it stops at 3. */
  const int n = 6, k = 10;
  float *M = xcalloc((size_t)n * k, 4), *S = xcalloc((size_t)n * n, 4);
  for (int i = 0; i < n * k; i++) M[i] = (float)rng_normal(8, 9, 0, i);
  linalg_ws w = {0};
  int rc = gorp_basis_reserve(&w, n, k, n), r = 0, added = 0;
  rc |= gorp_basis_extend(S, &r, n, M, n, k, 1.0f, &added, &w);
  check("cap: full-rank moment at energy 1 fills r = n = 6", !rc && added == 6 && r == 6,
        "added %g", added);
  check("cap: the full basis is orthonormal", orthonormality_error(S, n, n, r) < 1e-5, "err %.1e",
        orthonormality_error(S, n, n, r));
  for (int i = 0; i < n * k; i++) M[i] = (float)rng_normal(8, 9, 1, i);
  rc |= gorp_basis_extend(S, &r, n, M, n, k, 1.0f, &added, &w);
  check("cap: a further task on a full basis adds nothing", !rc && added == 0 && r == 6, "added %g",
        added);
  float *S3 = xcalloc((size_t)n * 3, 4);
  r = 0;
  rc |= gorp_basis_reserve(&w, n, k, 3);
  rc |= gorp_basis_extend(S3, &r, 3, M, n, k, 1.0f, &added, &w);
  check("cap: cap = 3 < n stops at 3 columns", !rc && added == 3 && r == 3, "added %g", added);
  free(M), free(S), free(S3);
  linalg_ws_free(&w);
}

/* 20 tasks whose moments mostly lie in the stored basis (the hard case for orthogonality: the
 * residual is small, so its singular vectors carry relatively more float error). After each,
 * the captured share is checked in double: >= energy with the new columns, < energy with one
 * fewer (the count is minimal), unless the cap or the rank stopped it. */
static void test_energy_many_tasks(int cols) {
  const int n = 200, k = 8, cap = 200;
  const float energy = 0.99f;
  float *S = xcalloc((size_t)n * cap, 4), *M = xcalloc((size_t)n * k, 4);
  float *Mt = xcalloc((size_t)n * k, 4);
  linalg_ws w = {0};
  int rc = gorp_basis_reserve(&w, n, k, cap), r = 0, added = 0, bad_count = 0;
  for (int task = 0; task < 20; task++) {
    for (int i = 0; i < n; i++)
      for (int j = 0; j < k; j++) {
        double v = 0.05 * rng_normal(21, task, i, j);
        for (int a = 0; a < r && a < 16; a++)
          v += S[(size_t)i * cap + a] * rng_normal(22, task, a, j);
        M[(size_t)i * k + j] = (float)v;
      }
    const int r0 = r;
    if (cols) {
      transpose(Mt, M, n, k);
      rc |= gorp_basis_extend_cols(S, &r, cap, Mt, n, k, energy, &added, &w);
    } else {
      rc |= gorp_basis_extend(S, &r, cap, M, n, k, energy, &added, &w);
    }
    const double with = captured(S, cap, r, M, n, k);
    const double fewer = captured(S, cap, r - 1, M, n, k);
    if (added > 0 && !(with >= energy - 1e-5 && fewer < energy + 1e-5)) bad_count++;
    if (added == 0 && !(with >= energy - 1e-5) && r < cap) bad_count++;
    (void)r0;
  }
  const double err = orthonormality_error(S, cap, n, r);
  char name[128];
  snprintf(name, sizeof name, "20 tasks%s: S^T S = I within 1e-5 (r = %d)",
           cols ? " (extend_cols)" : "", r);
  check(name, !rc && err <= 1e-5, "max err %.1e", err);
  snprintf(name, sizeof name, "20 tasks%s: each count is minimal for energy .99 (double check)",
           cols ? " (extend_cols)" : "");
  check(name, !rc && bad_count == 0, "bad tasks %g", bad_count);
  free(S), free(M), free(Mt);
  linalg_ws_free(&w);
}

/* ---- (e): projections ---- */
static void test_projections(void) {
  const int n = 300, k = 16, cap = 50, r = 40;
  double *Ud = rand_orthonormal(n, r, 401);
  float *S = xcalloc((size_t)n * cap, 4), *R = xcalloc((size_t)n * k, 4);
  float *R0 = xcalloc((size_t)n * k, 4);
  for (int i = 0; i < n; i++)
    for (int a = 0; a < r; a++) S[(size_t)i * cap + a] = (float)Ud[(size_t)i * r + a];
  for (int i = 0; i < n * k; i++) R0[i] = R[i] = (float)rng_normal(41, 42, 0, i);
  linalg_ws w = {0};
  int rc = gorp_basis_reserve(&w, n, k, cap);
  rc |= gorp_project_rows(R, S, r, cap, n, k, &w);
  double r2 = 0, st2 = 0, dev2 = 0;
  for (int j = 0; j < k; j++) {
    double c[40];
    for (int a = 0; a < r; a++) {
      double d = 0, d0 = 0;
      for (int i = 0; i < n; i++) {
        d += (double)S[(size_t)i * cap + a] * R[(size_t)i * k + j];
        d0 += (double)S[(size_t)i * cap + a] * R0[(size_t)i * k + j];
      }
      st2 += d * d;
      c[a] = d0;
    }
    for (int i = 0; i < n; i++) {
      double ref = R0[(size_t)i * k + j];
      for (int a = 0; a < r; a++) ref -= S[(size_t)i * cap + a] * c[a];
      dev2 += (ref - R[(size_t)i * k + j]) * (ref - R[(size_t)i * k + j]);
      r2 += (double)R0[(size_t)i * k + j] * R0[(size_t)i * k + j];
    }
  }
  check("project_rows: ||S^T R|| <= 1e-5 ||R||", !rc && sqrt(st2 / r2) <= 1e-5, "rel %.1e",
        sqrt(st2 / r2));
  check("project_rows: R = R0 - S S^T R0 (double reference) within 1e-5",
        !rc && sqrt(dev2 / r2) <= 1e-5, "rel %.1e", sqrt(dev2 / r2));

  float *Rt = xcalloc((size_t)n * k, 4);
  transpose(Rt, R0, n, k); /* (k, n) */
  rc |= gorp_project_cols(Rt, S, r, cap, n, k, &w);
  float *back = xcalloc((size_t)n * k, 4);
  transpose(back, Rt, k, n);
  double diff = 0, st2c = 0, rmax = 0;
  for (int i = 0; i < n * k; i++) diff = fmax(diff, fabs(back[i] - R[i]));
  for (int i = 0; i < n * k; i++) rmax = fmax(rmax, fabs(R0[i]));
  for (int j = 0; j < k; j++)
    for (int a = 0; a < r; a++) {
      double d = 0;
      for (int i = 0; i < n; i++) d += (double)Rt[(size_t)j * n + i] * S[(size_t)i * cap + a];
      st2c += d * d;
    }
  check("project_cols: ||R S|| <= 1e-5 ||R||", !rc && sqrt(st2c / r2) <= 1e-5, "rel %.1e",
        sqrt(st2c / r2));
  /* the two run their products transposed, so a BLAS may sum them in another order (the
   * reference BLAS does): a few float roundings of the largest entry apart */
  check("project_cols on R^T = (project_rows on R)^T within 8 eps max|R0|",
        !rc && diff <= 8 * FLT_EPSILON * rmax, "max diff %.1e", diff);
  memcpy(R, R0, (size_t)n * k * 4);
  rc |= gorp_project_rows(R, S, 0, cap, n, k, &w);
  check("project_rows with r = 0 leaves R as it was", !rc && !memcmp(R, R0, (size_t)n * k * 4),
        "%g", 0.0);
  free(Ud), free(S), free(R), free(R0), free(Rt), free(back);
  linalg_ws_free(&w);
}

/* ---- (f): allocation ---- */
static void test_no_allocation(void) {
  const int m = 2000, n = 300, k = 8, cap = 300;
  float *G = xcalloc((size_t)m * n, 4), *Q = xcalloc((size_t)k * n, 4);
  float *P = xcalloc((size_t)m * k, 4), *sv = xcalloc((size_t)k, 4);
  float *S = xcalloc((size_t)n * cap, 4), *Mb = xcalloc((size_t)n * k, 4);
  float *Rp = xcalloc((size_t)n * k, 4);
  for (size_t i = 0; i < (size_t)m * n; i++) G[i] = (float)rng_normal(51, 52, 0, i);
  svd_opts o;
  svd_opts_default(&o);
  linalg_ws w = {0};
  int rc = linalg_ws_reserve(&w, m, n, k, &o) | gorp_basis_reserve(&w, n, k, cap);
  const float *work0 = w.work, *scratch0 = w.scratch;
  const size_t wcap0 = w.work_cap, scap0 = w.scratch_cap;
  const long grow0 = w.n_grow;
  for (int pass = 0; pass < 2; pass++) { /* pass 0 warms up OpenBLAS/LAPACK internals */
#if COUNT_MALLOC
    if (pass == 1) __atomic_store_n(&malloc_watch, 1, __ATOMIC_RELAXED);
#endif
    for (int it = 0; it < 5; it++) {
      o.counter = (uint64_t)it;
      rc |= linalg_topk_right(Q, sv, G, m, n, k, SVD_EXACT, NULL, &w);
      rc |= linalg_topk_left(P, sv, G, m, n, k, SVD_EXACT, NULL, &w);
      rc |= linalg_topk_right(Q, sv, G, m, n, k, SVD_RANDOMIZED, &o, &w);
      rc |= linalg_topk_left(P, sv, G, m, n, k, SVD_RANDOMIZED, &o, &w);
      rc |= linalg_topk_right(Q, sv, G, 40, 30, 8, SVD_RANDOMIZED, &o, &w); /* smaller shape */
      for (int i = 0; i < n * k; i++) Mb[i] = G[(size_t)it * n * k + i];
      int r = 0, added = 0;
      memset(S, 0, (size_t)n * cap * 4);
      rc |= gorp_basis_extend(S, &r, cap, Mb, n, k, 0.9f, &added, &w);
      rc |= gorp_basis_extend(S, &r, cap, G + n * k, n, k, 0.9f, &added, &w);
      rc |= gorp_basis_extend_cols(S, &r, cap, G + 2 * n * k, n, k, 0.9f, &added, &w);
      memcpy(Rp, G, (size_t)n * k * 4);
      rc |= gorp_project_rows(Rp, S, r, cap, n, k, &w);
      rc |= gorp_project_cols(Rp, S, r, cap, n, k, &w);
    }
  }
  check("workspace pointers/capacities/grow count unchanged over 70 calls after reserve",
        !rc && w.work == work0 && w.scratch == scratch0 && w.work_cap == wcap0 &&
            w.scratch_cap == scap0 && w.n_grow == grow0,
        "work %.0f floats", (double)w.work_cap);
#if COUNT_MALLOC
  __atomic_store_n(&malloc_watch, 0, __ATOMIC_RELAXED);
  const long total = n_malloc_calls, seen = total < 4096 ? total : 4096;
  long ours = total - seen, blas = 0; /* callers beyond the 4096 kept count as ours */
  for (long i = 0; i < seen; i++) {
    Dl_info info;
    if (dladdr(malloc_callers[i], &info) && info.dli_fname && strstr(info.dli_fname, "openblas"))
      blas++;
    else
      ours++;
  }
  check("no malloc/calloc/realloc from outside libopenblas during 70 calls (counted)", ours == 0,
        "outside %g", (double)ours);
  printf("     (allocations made inside OpenBLAS's own GEMM kernels meanwhile: %ld)\n", blas);
#else
  printf("SKIP malloc counting under AddressSanitizer (pointer/capacity check above only)\n");
#endif
  free(G), free(Q), free(P), free(sv), free(S), free(Mb), free(Rp);
  linalg_ws_free(&w);
}

int main(void) {
  linalg_ws w = {0};
  double t0 = proc_now_s();
  const int shapes[][3] = {{64, 8, 8},   {8, 64, 8},   {300, 40, 8}, {40, 300, 8},
                           {2000, 8, 8}, {8, 1500, 8}, {300, 40, 1}, {500, 300, 5}};
  for (int i = 0; i < 8; i++)
    test_exact_shape(shapes[i][0], shapes[i][1], shapes[i][2], 100 + 10 * i, &w);
  double t1 = proc_now_s();
  const int rshapes[][3] = {{300, 40, 5}, {40, 300, 5}, {500, 300, 8}, {2000, 8, 4}, {8, 1500, 4}};
  for (int i = 0; i < 5; i++)
    test_randomized_shape(rshapes[i][0], rshapes[i][1], rshapes[i][2], 200 + 10 * i, &w);
  test_randomized_draws_differ(&w);
  double t2 = proc_now_s();
  check("every returned singular vector has its largest |entry| positive", sign_bad == 0,
        "vectors checked %g", (double)sign_checked);
  test_sign_ties();
  test_errors(&w);
  test_energy_rule();
  test_energy_cap();
  test_energy_many_tasks(0);
  test_energy_many_tasks(1);
  double t3 = proc_now_s();
  test_projections();
  test_no_allocation();
  double t4 = proc_now_s();
  linalg_ws_free(&w);
  printf("time: exact %.2f s, randomized %.2f s, energy rule %.2f s, projections+alloc %.2f s\n",
         t1 - t0, t2 - t1, t3 - t2, t4 - t3);
  printf("%d passed, %d failed\n", n_pass, n_fail);
  return n_fail != 0;
}
