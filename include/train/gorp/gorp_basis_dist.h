/* GORP's shared basis for a matrix sharded over the tensor-parallel group (docs/PARALLEL.md),
 * on the input axis: the protected axis is the columns of M (rows, n); the logical basis is
 * S (n, cap), and each rank stores the rows of S that match its columns of M.
 * - DIST_ROWS (column-parallel weights and their moments, q k v gate up): each rank holds a block
 *   of rows of M with every column, so it stores all of S (identical on every rank) and projects
 *   locally.
 * - DIST_COLS (row-parallel o, down; LoRA A of o, down): each rank holds a block of the protected
 *   axis and the same block of S's rows, so M S is summed over the group before
 *   M <- M - (M S) S^T, and the basis memory is split like the weight.
 * The energy rule (gorp_basis.h) runs on the distributed residual: norms summed over the group,
 * sigma_1 and the residual's singular vectors from ScaLAPACK (linalg_dist, SVD_EXACT), returned
 * replicated and bit-identical; appending a column (Gram-Schmidt, norm, sign convention on the
 * whole vector) sums its pieces over the group when S is split, so every rank agrees on what was
 * appended.
 * The paper's axis protects the rows of a matrix instead; those calls transpose the shard into
 * scratch and run the same code on the transposed logical matrix.
 * Collective over d->comm. Not for: activation covariances. */
#ifndef GORP_GORP_BASIS_DIST_H
#define GORP_GORP_BASIS_DIST_H

#include "gorp/linalg_dist.h"

/* on_rows = 0: the protected axis is M's columns (the input axis); on_rows = 1: its rows (the
 * paper's axis: an output axis, or a compressed gradient's uncompressed one), handled as the
 * columns of the transposed shard. */

/* The rows of the logical basis this rank stores: [*off, *off + *len) of the protected axis. */
void gorp_dist_basis_rows(const dist_matrix *d, int on_rows, int *off, int *len);
/* Floats of scratch the calls below need for d with a basis of up to cap columns. */
size_t gorp_dist_scratch(const dist_matrix *d, int on_rows, int cap);
/* Reserves dw for the extension's SVDs of d. */
int gorp_dist_reserve(linalg_dist_ws *dw, const dist_matrix *d, int on_rows);

/* G_local <- G - (G S) S^T (columns) or G - S (S^T G) (rows) on this rank's shard, with this
 * rank's rows of S (len, cap), r columns in use. */
int gorp_dist_project_cols(float *G_local, const float *S_local, int r, int cap,
                           const dist_matrix *d, float *scratch);
int gorp_dist_project_rows(float *G_local, const float *S_local, int r, int cap,
                           const dist_matrix *d, float *scratch);
/* Extends S by the energy rule from the moment whose shard is M_local; *added columns appended
 * (the same on every rank). */
int gorp_dist_extend_cols(float *S_local, int *r, int cap, const float *M_local,
                          const dist_matrix *d, float energy, int *added, linalg_dist_ws *dw,
                          float *scratch);
int gorp_dist_extend_rows(float *S_local, int *r, int cap, const float *M_local,
                          const dist_matrix *d, float energy, int *added, linalg_dist_ws *dw,
                          float *scratch);

#endif
