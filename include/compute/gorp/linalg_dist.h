/* Top-k singular vectors of a matrix sharded over an MPI communicator (the tensor-parallel
 * group), for GORP under tensor parallelism: the gradient SVD of sharded full-rank targets and
 * the shared-space SVD of sharded first moments (docs/PARALLEL.md).
 *
 * Two methods, chosen by svd_kind as in linalg.h:
 * - SVD_EXACT: ScaLAPACK psgesvd (float) on a 1-D BLACS grid built over the communicator
 *   (1 x q for DIST_ROWS, q x 1 for DIST_COLS) with q = min(p, m, n): psgesvd gives a process
 *   that holds no singular-vector row a different bidiagonal algorithm (LAPACK's qd instead of
 *   QR sweeps), whose values then differ in the last bit and fail its own cross-rank check, so a
 *   matrix with fewer than p singular values runs on the first q ranks. The contiguous shards
 *   are moved to the block-cyclic layout by hand with one MPI_Alltoallv (uneven shards allowed);
 *   the wanted vectors are brought back to every rank with one all-reduce of disjoint pieces
 *   (exact).
 * - SVD_RANDOMIZED: the randomized SVD of linalg.c (same test matrix, oversampling, power
 *   iterations) built from local GEMMs on the shards: a product that contracts over the split
 *   axis is summed to rank 0, orthonormalised there and broadcast; a product that stays split is
 *   orthonormalised with TSQR (local Householder QR, QR of the stacked R factors on rank 0). With
 *   p = 1 it performs exactly the operations of linalg_topk_* SVD_RANDOMIZED, so the results are
 *   bit-identical to them.
 *
 * Conventions (as linalg.h): G (m, n) is row-major float32; singular values descending; every
 * returned vector is signed so that its first largest-magnitude entry (over the whole global
 * vector) is positive. Replicated outputs are bit-identical on every rank: they are computed on
 * one rank and broadcast, or assembled from disjoint pieces.
 *
 * Every function here is collective over the communicator: all ranks call it with the same
 * global arguments (m, n, layout, k, kind, options), which are checked against each other; an
 * error found on any rank (bad shape, non-finite entry, workspace too small) is returned on
 * every rank with the same code, so no rank is left waiting in a collective.
 *
 * Not for: matrices on one rank without MPI (linalg.h), eigenproblems, 2-D (row and column)
 * sharding, matrices whose global dimensions reach 2^30, or several threads on one workspace. */
#ifndef GORP_LINALG_DIST_H
#define GORP_LINALG_DIST_H

#include "gorp/linalg.h"

#include <mpi.h>
#include <stddef.h>

/* Which axis of G (m, n) is split over the ranks. Megatron's column-parallel weights (q, k, v,
 * gate, up: output rows split) give DIST_ROWS; row-parallel ones (o, down) give DIST_COLS. */
typedef enum dist_layout {
  DIST_ROWS = 0, /* rank r holds rows [local_off, local_off + local_len): G_local (len, n) */
  DIST_COLS = 1  /* rank r holds columns [local_off, local_off + local_len): G_local (m, len) */
} dist_layout;

/* One rank's view of a distributed matrix. The ranks' ranges must be contiguous, in rank order,
 * and cover the split axis exactly; they may be uneven and may be empty (local_len = 0). */
typedef struct dist_matrix {
  MPI_Comm comm; /* the communicator the workspace was made for (the same handle) */
  int m, n;      /* global shape */
  dist_layout layout;
  int local_off, local_len; /* this rank's row (DIST_ROWS) or column (DIST_COLS) range */
} dist_matrix;

/* The even split used across gorp: of total entries over p parts, part r gets
 * [r * total / p, (r + 1) * total / p) (integer division, computed in 64 bits). Needs no MPI. */
void dist_split(int total, int p, int r, int *off, int *len);
/* Fills d for this rank of comm with the even split of the layout's axis. Local (no collective). */
int dist_matrix_init(dist_matrix *d, MPI_Comm comm, int m, int n, dist_layout layout);

/* Scratch memory and the BLACS grids of one communicator. Zero-initialise ({0}), then
 * linalg_dist_ws_init once, linalg_dist_ws_reserve for every shape the calls will see, and
 * linalg_dist_ws_free at the end (all collective). Reserving only grows; a call whose shape needs
 * more than was reserved is refused on every rank, never grown, so the hot path allocates
 * nothing (MPI and ScaLAPACK internals aside). */
typedef struct linalg_dist_ws {
  MPI_Comm comm;
  int rank, size;  /* in comm */
  int blacs_sys;   /* BLACS system handle of comm (Csys2blacs_handle) */
  int *grids;      /* (p + 1, 2): BLACS contexts of the 1 x q (DIST_ROWS) and q x 1 (DIST_COLS)
                      grids on the first q ranks, made by reserve when first needed; -1 on a rank
                      outside the grid, -2 not made yet */
  int *ints;       /* (p, 20): per call, every rank's arguments (checked against each other)
                      and the counts and displacements of the v-collectives */
  float *work;     /* matrices, buffers and LAPACK/ScaLAPACK work arrays */
  size_t work_cap; /* floats in work */
  long n_grow;     /* (re)allocations of work so far: constant once reserved */
  int ready;       /* 1 after linalg_dist_ws_init */
} linalg_dist_ws;

/* Binds w to comm (every rank of comm calls it); the grids come with reserve. comm must outlive
 * w. */
int linalg_dist_ws_init(linalg_dist_ws *w, MPI_Comm comm);
/* Grows w for linalg_dist_topk_* on the matrix d with at most k vectors, for both SVD_EXACT and
 * SVD_RANDOMIZED with options o (NULL: the defaults). Collective: d must be a valid distribution
 * (as for the calls). Makes the BLACS grid the matrix needs on first use. Per rank, the exact
 * path needs about (3 m n + max(m, n) min(m, n)) / p floats plus psgesvd's work; the randomized
 * one l (n + m / p) for DIST_ROWS, l (m + n / p) for DIST_COLS (l = k + oversample; rank 0
 * 2 l n more). */
int linalg_dist_ws_reserve(linalg_dist_ws *w, const dist_matrix *d, int k, const svd_opts *o);
/* Releases the grids and memory (collective; MPI must still be running). */
void linalg_dist_ws_free(linalg_dist_ws *w);
/* Releases BLACS itself and keeps MPI running (Cblacs_exit(1)): once per process, after the last
 * linalg_dist_ws_free and before MPI_Finalize. */
void linalg_dist_finalize(void);

/* Q (k, n), replicated on every rank: the top-k right singular vectors of the distributed G, one
 * per row; sv (k), replicated, their singular values (may be NULL). G_local is this rank's shard:
 * (local_len, n) for DIST_ROWS, (m, local_len) for DIST_COLS, row-major, not modified. Needs
 * 1 <= k <= min(m, n). */
int linalg_dist_topk_right(float *Q, float *sv, const float *G_local, const dist_matrix *d, int k,
                           svd_kind kind, const svd_opts *o, linalg_dist_ws *w);
/* P: the top-k left singular vectors, one per column of the (m, k) row-major matrix: for
 * DIST_ROWS this rank's rows only, P (local_len, k); for DIST_COLS all of it, replicated. sv as
 * above. */
int linalg_dist_topk_left(float *P, float *sv, const float *G_local, const dist_matrix *d, int k,
                          svd_kind kind, const svd_opts *o, linalg_dist_ws *w);

#endif
