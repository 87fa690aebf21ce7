/* Rank-k projected Adam (see optim_lowrank.h). */
#include "gorp/optim_lowrank.h"

#include "gorp/backend.h"
#include "gorp/err.h"
#include "gorp/gorp_basis.h"
#include "gorp/gorp_basis_dist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The one allocation: the projection (proj floats), then the moments and scratch of R's shape. */
static int alloc_state(lowrank_adam *o, size_t proj) {
  const size_t rk = (size_t)o->k * (o->right ? o->m : o->n);
  o->state_floats = proj + 4 * rk;
  GORP_ALLOC(o->proj, o->state_floats, "rank-k Adam state");
  o->mom = o->proj + proj;
  o->var = o->mom + rk;
  o->R = o->var + rk;
  o->N = o->R + rk;
  return GORP_OK;
}

int lowrank_init(lowrank_adam *o, int m, int n, int k, int right, int gap, float lr, float scale,
                 float beta1, float beta2, float eps, float weight_decay, svd_kind svd,
                 const svd_opts *opts) {
  memset(o, 0, sizeof(*o));
  const int side = right ? n : m;
  if (k < 1 || k > (m < n ? m : n))
    GORP_ERR(GORP_EINPUT, "full.rank = %d must be in [1, %d] for a %d x %d weight", k,
             m < n ? m : n, m, n);
  *o = (lowrank_adam){.m = m,
                      .n = n,
                      .k = k,
                      .right = right,
                      .gap = gap,
                      .lr = lr,
                      .scale = scale,
                      .beta1 = beta1,
                      .beta2 = beta2,
                      .eps = eps,
                      .weight_decay = weight_decay,
                      .svd = svd};
  if (opts)
    o->opts = *opts;
  else
    svd_opts_default(&o->opts);
  return alloc_state(o, (size_t)k * side);
}

int lowrank_set_tp(lowrank_adam *o, const dist_matrix *dm, linalg_dist_ws *dws) {
  if (o->k > (dm->m < dm->n ? dm->m : dm->n))
    GORP_ERR(GORP_EINPUT, "full.rank = %d must be at most %d for a %d x %d weight", o->k,
             dm->m < dm->n ? dm->m : dm->n, dm->m, dm->n);
  o->dm = dm;
  o->dws = dws;
  if (o->right && dm->n != o->n) { /* Q spans the whole input axis */
    free(o->proj);
    GORP_CALL(alloc_state(o, (size_t)o->k * dm->n));
  }
  return linalg_dist_ws_reserve(dws, dm, o->k, &o->opts);
}

void lowrank_free(lowrank_adam *o) {
  free(o->proj);
  memset(o, 0, sizeof(*o));
}

void lowrank_reset(lowrank_adam *o) {
  const size_t rk = (size_t)o->k * (o->right ? o->m : o->n);
  memset(o->mom, 0, 2 * rk * sizeof(float));
  o->step = 0;
}

int lowrank_reserve(const lowrank_adam *o, linalg_ws *w) {
  GORP_CALL(linalg_ws_reserve(w, o->m, o->n, o->k, &o->opts));
  return GORP_OK;
}

/* Q's columns that this rank's shard of W multiplies: all of Q (k, n), or under TP with columns
 * split this rank's block of them (the row stride stays the logical n). */
static const float *lowrank_local_q(const lowrank_adam *o) {
  return o->proj + (o->dm && o->dm->layout == DIST_COLS ? o->dm->local_off : 0);
}

/* R <- R - S (S^T R) on R's uncompressed axis (the paper's protection). */
static int guard_compressed(const lowrank_adam *o, float *R, const lowrank_guard *g, linalg_ws *w) {
  if (g->dm && o->right) return gorp_dist_project_rows(R, g->S, g->r, g->cap, g->dm, g->scratch);
  if (g->dm) return gorp_dist_project_cols(R, g->S, g->r, g->cap, g->dm, g->scratch);
  if (o->right) return gorp_project_rows(R, g->S, g->r, g->cap, o->m, o->k, w);
  return gorp_project_cols(R, g->S, g->r, g->cap, o->n, o->k, w);
}

int lowrank_compress(lowrank_adam *o, float *G, const lowrank_guard *g, linalg_ws *w) {
  const backend_ops *be = backend_get();
  const int m = o->m, n = o->n, k = o->k;
  const int guarded = g && g->r > 0;
  if (guarded && g->input_axis) GORP_CALL(gorp_project_cols(G, g->S, g->r, g->cap, n, m, w));
  if (o->step % o->gap == 0) {
    o->opts.counter++;
    if (o->dm && o->right)
      GORP_CALL(linalg_dist_topk_right(o->proj, NULL, G, o->dm, k, o->svd, &o->opts, o->dws));
    else if (o->dm)
      GORP_CALL(linalg_dist_topk_left(o->proj, NULL, G, o->dm, k, o->svd, &o->opts, o->dws));
    else if (o->right)
      GORP_CALL(linalg_topk_right(o->proj, NULL, G, m, n, k, o->svd, &o->opts, w));
    else
      GORP_CALL(linalg_topk_left(o->proj, NULL, G, m, n, k, o->svd, &o->opts, w));
  }
  o->step++;
  const size_t rk = (size_t)k * (o->right ? m : n);
  if (o->right) /* R (m, k) = G Q^T */
    GORP_CALL(be->gemm(0, 1, m, k, n, 1.0f, G, n, lowrank_local_q(o), o->dm ? o->dm->n : n, 0.0f,
                       o->R, k));
  else /* R (k, n) = P^T G */
    GORP_CALL(be->gemm(1, 0, k, n, m, 1.0f, o->proj, k, G, n, 0.0f, o->R, n));
  /* a projection on the split axis gives each rank a part of R */
  if (o->dm && (o->right == (o->dm->layout == DIST_COLS)))
    GORP_MPI(MPI_Allreduce(MPI_IN_PLACE, o->R, (int)rk, MPI_FLOAT, MPI_SUM, o->dm->comm));
  if (guarded && !g->input_axis) GORP_CALL(guard_compressed(o, o->R, g, w));
  return GORP_OK;
}

int lowrank_apply(lowrank_adam *o, float *W, float clip, const lowrank_guard *g, linalg_ws *w) {
  const backend_ops *be = backend_get();
  const int m = o->m, n = o->n, k = o->k;
  const size_t rk = (size_t)k * (o->right ? m : n);
  const double bc1 = 1.0 - pow(o->beta1, (double)o->step),
               bc2 = 1.0 - pow(o->beta2, (double)o->step);
  const float bc2_sqrt = (float)sqrt(bc2), inv_bc1 = (float)(1.0 / bc1);
  for (size_t i = 0; i < rk; i++) {
    const float r = clip == 1.0f ? o->R[i] : o->R[i] * clip;
    o->mom[i] += (r - o->mom[i]) * (1.0f - o->beta1);
    o->var[i] = o->var[i] * o->beta2 + (1.0f - o->beta2) * r * r;
    o->N[i] = o->mom[i] * inv_bc1 / (sqrtf(o->var[i]) / bc2_sqrt + o->eps);
  }
  if (g && g->r > 0 && !g->input_axis && g->project_update)
    GORP_CALL(guard_compressed(o, o->N, g, w));
  if (o->weight_decay > 0.0f) {
    const float decay = 1.0f - o->lr * o->weight_decay;
    for (size_t i = 0; i < (size_t)m * n; i++) W[i] *= decay;
  }
  const float step = -o->lr * o->scale;
  if (o->right) /* W += step * N Q */
    GORP_CALL(be->gemm(0, 0, m, n, k, step, o->N, k, lowrank_local_q(o), o->dm ? o->dm->n : n, 1.0f,
                       W, n));
  else /* W += step * P N */
    GORP_CALL(be->gemm(0, 0, m, n, k, step, o->proj, k, o->N, n, 1.0f, W, n));
  return GORP_OK;
}

int lowrank_step(lowrank_adam *o, float *W, float *G, const lowrank_guard *g, linalg_ws *w) {
  GORP_CALL(lowrank_compress(o, G, g, w));
  return lowrank_apply(o, W, 1.0f, g, w);
}
