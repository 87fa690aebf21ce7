/* GORP's shared space of one protected matrix as a method keeps it: the stored basis S with the
 * columns each task added (and, for activation bases, the input covariance being accumulated),
 * and the two things training does with it, whatever the layout: gorp_space_project keeps a
 * gradient or an update out of it, gorp_space_extend grows it from a finished task's moment.
 * Each picks one of four kernels, on one rank (gorp_basis.h) or sharded under TP
 * (gorp_basis_dist.h), times the protected axis on the matrix's rows or on its columns, so that
 * no caller repeats the choice.
 * Not for: which matrices are protected, on which axis, from which moment (trainer.c), the energy
 * rule and projections themselves (gorp_basis.h, gorp_basis_dist.h), storing S (ckpt). */
#ifndef GORP_GORP_SPACE_H
#define GORP_GORP_SPACE_H

#include "gorp/dist.h"
#include "gorp/linalg.h"
#include "gorp/linalg_dist.h"

/* A stored basis S (len, cap) row-major, r columns in use: the shared space of one matrix. Under
 * TP, a basis on a split axis holds this rank's rows [row_off, row_off + len) of the logical
 * (axis, cap) basis (gorp_basis_dist.h); otherwise len = axis and row_off = 0. cap <= axis: the
 * most columns the basis can ever need (trainer.c). */
typedef struct gorp_space {
  float *S;
  int len, cap, r;
  int axis; /* the protected axis' logical length */
  int row_off;
  int *task_end; /* (n_tasks) columns in use after each task: task t owns [task_end[t-1], end) */
  float *cov;    /* (len, len) input covariance being accumulated (activation bases), or NULL */
  long cov_rows; /* rows accumulated into cov */
} gorp_space;

/* The workspaces the calls below run in, lent by the owner of the spaces (the trainer shares them
 * with its rank-k optimizers): ws for the kernels on one rank; under TP the group's SVD workspace
 * dws and scratch of gorp_dist_scratch floats for the sharded kernels. */
typedef struct gorp_space_ws {
  linalg_ws *ws;
  linalg_dist_ws *dws;
  float *scratch;
} gorp_space_ws;

/* A basis of up to cap columns over a whole axis of len entries, with room for n_tasks task
 * ranges and, with with_cov, a (len, len) input covariance. */
int gorp_space_init(gorp_space *s, int len, int cap, int n_tasks, int with_cov);
/* Under TP: a basis of up to cap columns on the rows (on_rows) or columns of the sharded matrix
 * d; s holds this rank's rows of it and dws is made to fit. with_cov (activation bases): the basis
 * is kept whole instead, every rank building the same one from the gathered inputs, and only
 * projected through the shard. The caller makes the scratch fit (gorp_dist_scratch). */
int gorp_space_init_dist(gorp_space *s, const dist_matrix *d, int on_rows, int cap, int n_tasks,
                         int with_cov, linalg_dist_ws *dws);
void gorp_space_free(gorp_space *s);

/* G (rows, cols) of a protected matrix projected out of s on its protected axis: the columns
 * (on_cols, len = cols: the input axis) or the rows (len = rows). dm: G is this rank's shard of
 * the logical matrix dm (collective over its group); NULL: G is whole. No basis, or an empty one,
 * leaves G as it is. */
int gorp_space_project(const gorp_space *s, float *G, int rows, int cols, int on_cols,
                       const dist_matrix *dm, const gorp_space_ws *w);
/* W (rows, cols) holds a matrix after an optimizer step and before its value before the step: W
 * becomes before + the step projected as gorp_space_project does, and before holds that projected
 * step (gorp.project_update: Adam's element-wise scaling would otherwise leave the complement). */
int gorp_space_project_step(const gorp_space *s, float *W, float *before, int rows, int cols,
                            int on_cols, const dist_matrix *dm, const gorp_space_ws *w);
/* Extends s by the energy rule from the moment M of the protected matrix: M (len, k) with the
 * protected axis on its rows, or M (k, len) on its columns (on_cols); dm: M is this rank's shard
 * of the logical matrix dm (collective over its group). *added: the columns appended. */
int gorp_space_extend(gorp_space *s, const float *M, int k, int on_cols, const dist_matrix *dm,
                      float energy, int *added, const gorp_space_ws *w);

/* Activation bases: cov (len, len) += X^T X over the rows of X (B * T, len) that hold real
 * tokens (the first lengths[b] of each row b); rows is scratch of B * T * len floats. */
int gorp_space_observe(gorp_space *s, const float *X, const int *lengths, int B, int T,
                       float *rows);
/* Activation bases: extends s from the covariance observed since the last call (first summed
 * over the dp group of d; NULL: one rank) through its root M = V diag(sqrt(lambda)), since
 * M M^T = cov makes the energy rule on M the energy rule on the covariance's eigenvalues (GPM);
 * then clears the covariance for the next task. */
int gorp_space_extend_from_cov(gorp_space *s, const dist *d, float energy, int *added,
                               const gorp_space_ws *w);

#endif
