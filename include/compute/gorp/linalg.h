/* Top-k singular vectors of one local matrix, exact (LAPACK sgesvd) or randomized (Halko,
 * Martinsson & Tropp 2011), for the GORP projections and the shared-basis energy rule.
 *
 * Conventions every function here keeps:
 * - Row-major float32 matrices. G (m, n) is read as the column-major (n x m) matrix G^T, so LAPACK
 *   runs on the caller's layout without a transposed copy.
 * - Every returned singular vector is signed so that its largest-magnitude entry is positive (on a
 *   tie the first such entry decides). Exact, randomized, ScaLAPACK and the tests then agree.
 * - Singular values come out in descending order.
 * - No allocation after linalg_ws_reserve: a call whose shape needs more workspace than was
 *   reserved is refused with an error naming the shape (never silently grown), so a training step
 *   that passes once allocates nothing ever.
 *
 * Also the eigendecomposition of a symmetric matrix in double (linalg_sym_eig: GORP's activation
 * bases), once per task, so it takes no workspace.
 *
 * Not for: distributed matrices (ScaLAPACK, a later module), other eigenproblems, matrix products
 * outside an SVD (backend.h), or matrices with more than INT_MAX entries per dimension. Not
 * thread-safe per workspace: give each thread its own linalg_ws. */
#ifndef GORP_LINALG_H
#define GORP_LINALG_H

#include <stddef.h>
#include <stdint.h>

typedef enum svd_kind {
  SVD_EXACT = 0,     /* LAPACK sgesvd on the whole matrix, in float */
  SVD_RANDOMIZED = 1 /* Gaussian sketch, power iterations, then a small exact SVD */
} svd_kind;

/* Options of the randomized SVD; SVD_EXACT ignores them. NULL anywhere means the defaults. */
typedef struct svd_opts {
  int oversample;   /* p: the sketch has l = min(k + p, min(m, n)) columns (default 8) */
  int power_iters;  /* q: passes of (G G^T) with re-orthonormalisation (default 2) */
  uint64_t seed;    /* run seed: the test matrix is rng_normal(seed, RNG_STREAM_SVD, counter, .) */
  uint64_t counter; /* the caller's call counter (e.g. tensor id x refresh index): a different
                       counter gives an independent test matrix; equal ones repeat it exactly,
                       so a resumed run reproduces the sketch if it restores the counter */
} svd_opts;

/* Fills o with the defaults: oversample 8, power_iters 2, seed 0, counter 0. */
void svd_opts_default(svd_opts *o);

/* Scratch memory for the calls below. Zero-initialise it ({0}), reserve it once for the largest
 * shape it will see, free it at the end. Reserving only grows the buffers. */
typedef struct linalg_ws {
  float *work;        /* SVD/QR internals: matrix copy, sketch, LAPACK work arrays */
  size_t work_cap;    /* floats in work */
  float *scratch;     /* for callers built on linalg (gorp_basis): residuals, coefficients */
  size_t scratch_cap; /* floats in scratch */
  long n_grow;        /* number of (re)allocations so far: constant once reserved */
} linalg_ws;

/* Makes w big enough for linalg_topk_* / linalg_topk_values on any (m, n) matrix up to these
 * dimensions with at most k vectors, both SVD_EXACT and SVD_RANDOMIZED with options o (NULL: the
 * defaults). The exact path dominates: about m*n + max(m, n)*min(m, n) floats. */
int linalg_ws_reserve(linalg_ws *w, int m, int n, int k, const svd_opts *o);
/* Makes w->scratch hold at least n floats (for modules built on linalg). */
int linalg_ws_reserve_scratch(linalg_ws *w, size_t n);
void linalg_ws_free(linalg_ws *w);

/* Q (k, n): the top-k right singular vectors of G (m, n), one per row; sv (k) their singular values
 * (may be NULL). Needs 1 <= k <= min(m, n). G is not modified. */
int linalg_topk_right(float *Q, float *sv, const float *G, int m, int n, int k, svd_kind kind,
                      const svd_opts *o, linalg_ws *w);
/* P (m, k): the top-k left singular vectors of G (m, n), one per column (row-major (m, k)); sv (k)
 * as above. */
int linalg_topk_left(float *P, float *sv, const float *G, int m, int n, int k, svd_kind kind,
                     const svd_opts *o, linalg_ws *w);
/* sv (k): the k largest singular values of G (m, n), exact. */
int linalg_topk_values(float *sv, const float *G, int m, int n, int k, linalg_ws *w);

/* A (n, n) symmetric, row-major, its upper triangle read, becomes its eigenvectors, one per column;
 * w (n) the eigenvalues in ascending order (LAPACK dsyevd, which allocates its own workspace). The
 * vectors' signs are LAPACK's (no sign convention). */
int linalg_sym_eig(double *A, double *w, int n);

/* Applies the sign convention to one vector v (len entries, stride apart): negates it when its
 * first largest-magnitude entry is negative. */
void linalg_sign_fix(float *v, int len, int stride);

#endif
