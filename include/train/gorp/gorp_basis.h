/* The GORP shared gradient space of one protected matrix: an orthonormal basis S that grows after
 * every task by the energy rule, and the projections that keep later updates out of it.
 *
 * S is stored, never S S^T: (n, cap) row-major, columns 0..r-1 in use, n = the length of the
 * protected axis, cap <= n. Projections apply S (S^T R) with two backend products.
 *
 * Energy rule (docs/ALGORITHM.md, "Subspaces"), for a moment M whose protected axis has length n:
 *   R = M - S (S^T M), acc = (||M||_F^2 - ||R||_F^2) / ||M||_F^2.
 *   While acc < energy: append the next left singular vector u_j of R (descending sigma_j) to S,
 *   acc += sigma_j^2 / ||M||_F^2. Stop early when r reaches cap or sigma_j <= 1e-6 sigma_1(M).
 * - First task (r = 0): R = M, so the rule keeps the fewest leading singular vectors of M whose
 *   energy share reaches `energy`.
 * - A task whose moment already lies in span(S) has acc ~ 1 >= energy and adds nothing; a partly
 *   covered one adds only what the stored basis misses.
 * - ||M|| = 0 adds nothing. energy = 0 adds nothing; energy = 1 adds up to the numerical rank.
 * - Every appended column is made orthogonal to the stored ones by one Gram-Schmidt pass, then
 *   normalised and signed (largest-magnitude entry positive), so S stays orthonormal to float
 *   precision across many tasks.
 *
 * Not for: choosing which moment or axis to protect (the optimizer), storing S (ckpt), the SVD
 * itself (linalg.h). Allocates nothing after gorp_basis_reserve. */
#ifndef GORP_GORP_BASIS_H
#define GORP_GORP_BASIS_H

#include "gorp/linalg.h"

/* Singular values at or below this share of sigma_1(M) are float noise, not directions. */
#define GORP_BASIS_RANK_TOL 1e-6

/* Makes w big enough for every call below on a protected axis of length n, moments with k entries
 * on the other axis ((n, k) or (k, n)), and bases of up to cap columns. */
int gorp_basis_reserve(linalg_ws *w, int n, int k, int cap);

/* Energy rule for a moment whose protected axis is its rows (full-rank m x k moment, LoRA A's
 * r x in moment on its rank axis): appends left singular vectors of the residual.
 * S (n, cap) in/out, orthonormal columns 0..*r-1; *r in/out; M (n, k); energy in [0, 1];
 * *added = columns appended by this call. */
int gorp_basis_extend(float *S, int *r, int cap, const float *M, int n, int k, float energy,
                      int *added, linalg_ws *w);
/* The same rule for a moment whose protected axis is its columns (k x n full-rank moment, any
 * moment on the input axis): R = M - (M S) S^T, appends right singular vectors of R.
 * S (n, cap) in/out; M (k, n). */
int gorp_basis_extend_cols(float *S, int *r, int cap, const float *M, int n, int k, float energy,
                           int *added, linalg_ws *w);

/* R (n, k) <- R - S (S^T R), with S (n, cap) using its first r columns. r = 0 leaves R as is. */
int gorp_project_rows(float *R, const float *S, int r, int cap, int n, int k, linalg_ws *w);
/* R (k, n) <- R - (R S) S^T, with S (n, cap) using its first r columns. */
int gorp_project_cols(float *R, const float *S, int r, int cap, int n, int k, linalg_ws *w);

#endif
