/* One-sided rank-k projected Adam (GaLore-like) for one full-rank weight W (m, n), as
 * docs/ALGORITHM.md defines it: every `gap` steps the top-k singular vectors of the
 * gradient on one side are taken (right, Q (k, n), when `right`; else left, P (m, k)); Adam runs on
 * the compressed gradient R = G Q^T (m, k) (or P^T G (k, n)); the step is lr * scale * N Q (or
 * P N). The Adam moments are kept across refreshes, as in GaLore.
 * Optional protection by a stored basis S (GORP's shared space):
 *   - on the input axis (S in R^n): G <- G - (G S) S^T before anything, and Q is then taken from
 *     the projected G, so Q S = 0 and every step has dW S = 0 exactly;
 *   - on the compressed gradient's uncompressed axis (paper): R (m, k) <- R - S (S^T R) with S in
 *     R^m, or R (k, n) <- R - (R S) S^T with S in R^n, before the moments; with project_update also
 *     the normalised update N, which makes the step exactly orthogonal to S.
 * State: O(m k + k n) floats (Q or P, two moments, two scratch matrices), never O(m n).
 * Tensor parallelism: W and G are this rank's shard of a dist_matrix (rows split for a
 * column-parallel weight, columns for a row-parallel one). The projection comes from the
 * distributed SVD (linalg_dist: ScaLAPACK or the distributed randomized SVD). When the projection
 * acts on the split axis (right with columns split, left with rows split) R is summed over the
 * group and its moments are replicated; otherwise R, its moments and the update stay local. Q is
 * kept whole (k, n) on every rank, P as this rank's rows. On the input axis the caller projects G
 * (gorp_basis_dist.h) and passes no guard; on the paper's axis the guard acts on R, sharded or
 * whole.
 * Not for: choosing targets or building S (trainer.c, gorp_basis.h). */
#ifndef GORP_OPTIM_LOWRANK_H
#define GORP_OPTIM_LOWRANK_H

#include "gorp/linalg.h"
#include "gorp/linalg_dist.h"

#include <stddef.h>

typedef struct lowrank_adam {
  int m, n, k;           /* this rank's shard (m, n) */
  const dist_matrix *dm; /* the logical weight under TP, or NULL on one rank */
  linalg_dist_ws *dws;   /* its SVD workspace under TP */
  int right;             /* 1: Q (k, n) and R (m, k); 0: P (m, k) and R (k, n) */
  int gap;               /* refresh the projection every gap steps */
  float lr, scale, beta1, beta2, eps, weight_decay;
  svd_kind svd;
  svd_opts opts;
  long step;
  float *proj;         /* Q (k, logical n) or P (m, k): the first part of the one allocation */
  float *mom;          /* R's shape: first moment */
  float *var;          /* R's shape: second moment */
  float *R;            /* R's shape: compressed gradient */
  float *N;            /* R's shape: normalised update */
  size_t state_floats; /* floats held by this optimizer (the one allocation) */
} lowrank_adam;

/* The stored basis that protects W, or NULL: S (len, cap) row-major, r columns in use. */
typedef struct lowrank_guard {
  const float *S;
  int r, cap;
  int input_axis;     /* 1: S in R^n protects the input axis; 0: the paper's axis */
  int project_update; /* paper axis: also project N */
  /* under TP on the paper's axis: R's logical matrix when R stays split (S holds this rank's
   * rows of the basis, gorp_basis_dist.h) and scratch of gorp_dist_scratch floats; NULL when R
   * is whole on this rank */
  const dist_matrix *dm;
  float *scratch;
} lowrank_guard;

int lowrank_init(lowrank_adam *o, int m, int n, int k, int right, int gap, float lr, float scale,
                 float beta1, float beta2, float eps, float weight_decay, svd_kind svd,
                 const svd_opts *opts);
/* Makes o work on the shard (m, n) of dm, its SVDs on dws (reserved here); after lowrank_init
 * with the shard's shape, before any step. dm and dws must outlive o. */
int lowrank_set_tp(lowrank_adam *o, const dist_matrix *dm, linalg_dist_ws *dws);
void lowrank_free(lowrank_adam *o);
/* Resets the moments and the step count (a new task), keeping the allocation. */
void lowrank_reset(lowrank_adam *o);
/* Reserves w for this optimizer's SVDs and projections. */
int lowrank_reserve(const lowrank_adam *o, linalg_ws *w);
/* One step: W (m, n) updated from its gradient G (m, n), which is projected in place when the
 * guard protects the input axis. lowrank_compress then lowrank_apply with clip 1. */
int lowrank_step(lowrank_adam *o, float *W, float *G, const lowrank_guard *g, linalg_ws *w);
/* The step's first half, all that reads G: the input-axis projection of G (in place), the
 * refresh of the projection every gap steps, and the compressed gradient R (summed over the TP
 * group where the projection acts on the split axis, then guarded on the paper's axis). After it
 * G is not needed: a caller that streams gradients (trainer.c, full.stream_grad) runs it as soon
 * as backward has produced G and reuses G's memory. */
int lowrank_compress(lowrank_adam *o, float *G, const lowrank_guard *g, linalg_ws *w);
/* The second half: Adam on clip x R (clip: the global-norm clipping factor that G would have been
 * scaled by; every operation of lowrank_compress is linear in G, so this is the step of the
 * clipped G), the update guard, weight decay and W += -lr scale (N Q or P N). */
int lowrank_apply(lowrank_adam *o, float *W, float clip, const lowrank_guard *g, linalg_ws *w);

#endif
